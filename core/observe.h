/* Observers (reign.h §4c): what the engine tells them. The engine calls
 * these two hooks; everything else of an observer lives in core/observe.c
 * and runs on the observer's own thread. */
#ifndef REIGN_CORE_OBSERVE_H
#define REIGN_CORE_OBSERVE_H

#include <stdbool.h>
#include <stddef.h>

#include "reign/reign.h"

/* With f->mu held, on the engine thread: a notification named these
 * resources (all: it could not tell which). Marks them due for a read in
 * every observer that watches them (or adds them to a prefix observer) and
 * wakes those observers. Takes each observer's lock inside f->mu. */
void reign_observe_notified(reign_factory *f, char *const *names, const size_t *lens, size_t n,
                            bool all);

/* On the engine thread, no lock held, before each wait, with the
 * notification fd it is about to poll: tells the backend whether anybody
 * observes (backend->observe), and when the fd came back or changed (a
 * reconnect) has every observer read everything, since notifications may
 * have been missed meanwhile. */
void reign_observe_engine_sync(reign_factory *f, int notify_fd);

#endif
