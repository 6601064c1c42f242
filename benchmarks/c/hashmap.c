/* A hash map workload: an open-addressing table of 32-bit keys (linear probing, tombstones,
   growth by rehashing) under a random mix of inserts, lookups and deletes. Integer
   multiply and shift hashing, unpredictable branches, scattered loads and stores. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EMPTY 0u
#define DELETED 1u  /* keys 0 and 1 are reserved: user keys are shifted by 2 */

struct map {
    uint32_t *keys;
    uint32_t *values;
    uint32_t capacity;  /* a power of two */
    uint32_t used;      /* live entries plus tombstones */
    uint32_t live;
};

static uint32_t hash(uint32_t key) {
    key ^= key >> 16;
    key *= 0x7feb352dU;
    key ^= key >> 15;
    key *= 0x846ca68bU;
    key ^= key >> 16;
    return key;
}

static void map_init(struct map *m, uint32_t capacity) {
    m->capacity = capacity;
    m->used = m->live = 0;
    m->keys = calloc(capacity, sizeof *m->keys);
    m->values = malloc(capacity * sizeof *m->values);
    if (!m->keys || !m->values) {
        fputs("out of memory\n", stderr);
        exit(1);
    }
}

static uint32_t *slot_for(struct map *m, uint32_t key, int inserting) {
    uint32_t mask = m->capacity - 1;
    uint32_t i = hash(key) & mask;
    uint32_t *tomb = NULL;
    for (;;) {
        uint32_t k = m->keys[i];
        if (k == key)
            return &m->keys[i];
        if (k == EMPTY)
            return inserting && tomb ? tomb : &m->keys[i];
        if (k == DELETED && !tomb)
            tomb = &m->keys[i];
        i = (i + 1) & mask;
    }
}

static void map_put(struct map *m, uint32_t key, uint32_t value);

static void grow(struct map *m) {
    struct map bigger;
    map_init(&bigger, m->capacity * 2);
    for (uint32_t i = 0; i < m->capacity; i++)
        if (m->keys[i] > DELETED)
            map_put(&bigger, m->keys[i] - 2, m->values[i]);
    free(m->keys);
    free(m->values);
    *m = bigger;
}

static void map_put(struct map *m, uint32_t key, uint32_t value) {
    if ((m->used + 1) * 4 > m->capacity * 3)
        grow(m);
    uint32_t *slot = slot_for(m, key + 2, 1);
    uint32_t index = slot - m->keys;
    if (*slot <= DELETED) {
        if (*slot == EMPTY)
            m->used++;
        m->live++;
        *slot = key + 2;
    }
    m->values[index] = value;
}

static int map_get(struct map *m, uint32_t key, uint32_t *value) {
    uint32_t *slot = slot_for(m, key + 2, 0);
    if (*slot != key + 2)
        return 0;
    *value = m->values[slot - m->keys];
    return 1;
}

static void map_delete(struct map *m, uint32_t key) {
    uint32_t *slot = slot_for(m, key + 2, 0);
    if (*slot == key + 2) {
        *slot = DELETED;
        m->live--;
    }
}

static uint64_t state = 0x853c49e6748fea9bULL;

static uint32_t next_random(void) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(state >> 33);
}

int main(int argc, char **argv) {
    long operations = argc > 1 ? atol(argv[1]) : 1000000;
    uint32_t key_range = argc > 2 ? (uint32_t)atol(argv[2]) : 1u << 20;
    struct map m;
    map_init(&m, 16);
    uint64_t found = 0, sum = 0;
    for (long i = 0; i < operations; i++) {
        uint32_t r = next_random();
        uint32_t key = (r >> 3) % key_range;
        switch (r & 7) {
        case 0: case 1: case 2:
            map_put(&m, key, (uint32_t)i);
            break;
        case 3:
            map_delete(&m, key);
            break;
        default: {
            uint32_t value;
            if (map_get(&m, key, &value)) {
                found++;
                sum += value;
            }
        }
        }
    }
    printf("live %u capacity %u found %llu sum %llu\n", m.live, m.capacity,
           (unsigned long long)found, (unsigned long long)sum);
    return 0;
}
