/* A small chained hash map keyed by byte strings (FNV-1a), doubling at load
 * 1, so a batch of 10,000 ops on 10,000 held leases stays linear. */
#include <stdlib.h>
#include <string.h>

#include "file_internal.h"

struct file_map_node {
    file_map_node *next;
    uint64_t hash;
    size_t key_len;
    void *value;
    char key[]; /* key_len bytes + NUL */
};

static file_map_node **find_slot(const file_map *m, const void *key, size_t key_len, uint64_t h)
{
    if (m->n_buckets == 0)
        return NULL;
    file_map_node **slot = &m->buckets[h & (m->n_buckets - 1)];
    for (; *slot != NULL; slot = &(*slot)->next) {
        file_map_node *n = *slot;
        if (n->hash == h && n->key_len == key_len && memcmp(n->key, key, key_len) == 0)
            return slot;
    }
    return slot;
}

void *reign_file_map_get(const file_map *m, const void *key, size_t key_len)
{
    file_map_node **slot = find_slot(m, key, key_len, reign_hash(key, key_len));
    return slot != NULL && *slot != NULL ? (*slot)->value : NULL;
}

static int grow(file_map *m)
{
    size_t n = m->n_buckets ? m->n_buckets * 2 : 16;
    file_map_node **buckets = calloc(n, sizeof *buckets);
    if (buckets == NULL)
        return -1;
    for (size_t i = 0; i < m->n_buckets; i++) {
        file_map_node *node = m->buckets[i];
        while (node != NULL) {
            file_map_node *next = node->next;
            file_map_node **head = &buckets[node->hash & (n - 1)];
            node->next = *head;
            *head = node;
            node = next;
        }
    }
    free(m->buckets);
    m->buckets = buckets;
    m->n_buckets = n;
    return 0;
}

int reign_file_map_put(file_map *m, const void *key, size_t key_len, void *value)
{
    if (m->count >= m->n_buckets && grow(m) != 0)
        return -1;
    file_map_node *node = malloc(sizeof *node + key_len + 1);
    if (node == NULL)
        return -1;
    node->hash = reign_hash(key, key_len);
    node->key_len = key_len;
    node->value = value;
    memcpy(node->key, key, key_len);
    node->key[key_len] = '\0';
    file_map_node **head = &m->buckets[node->hash & (m->n_buckets - 1)];
    node->next = *head;
    *head = node;
    m->count++;
    return 0;
}

void *reign_file_map_remove(file_map *m, const void *key, size_t key_len)
{
    file_map_node **slot = find_slot(m, key, key_len, reign_hash(key, key_len));
    if (slot == NULL || *slot == NULL)
        return NULL;
    file_map_node *node = *slot;
    void *value = node->value;
    *slot = node->next;
    free(node);
    m->count--;
    return value;
}

void reign_file_map_sweep(file_map *m, file_map_visit_fn visit, void *ctx)
{
    for (size_t i = 0; i < m->n_buckets; i++) {
        file_map_node **slot = &m->buckets[i];
        while (*slot != NULL) {
            file_map_node *node = *slot;
            if (visit(node->key, node->key_len, node->value, ctx)) {
                *slot = node->next;
                free(node);
                m->count--;
            } else {
                slot = &node->next;
            }
        }
    }
}

void reign_file_map_free(file_map *m, void (*free_value)(void *value))
{
    for (size_t i = 0; i < m->n_buckets; i++) {
        file_map_node *node = m->buckets[i];
        while (node != NULL) {
            file_map_node *next = node->next;
            if (free_value != NULL)
                free_value(node->value);
            free(node);
            node = next;
        }
    }
    free(m->buckets);
    memset(m, 0, sizeof *m);
}
