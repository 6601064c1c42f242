/* Sorting: libc's qsort with a comparison function (indirect calls) on records, then a
   hand-written merge sort of 32-bit integers (memcpy of runs, tight compare loops).
   Prints checksums of both results. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct record {
    uint32_t key;
    uint32_t payload[3];
};

static uint64_t state = 0x9e3779b97f4a7c15ULL;

static uint32_t next_random(void) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (uint32_t)state;
}

static int by_key(const void *a, const void *b) {
    uint32_t x = ((const struct record *)a)->key, y = ((const struct record *)b)->key;
    return (x > y) - (x < y);
}

static void merge_sort(uint32_t *items, uint32_t *scratch, size_t n) {
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                scratch[k++] = items[i] <= items[j] ? items[i++] : items[j++];
            memcpy(scratch + k, items + i, (mid - i) * sizeof *items);
            k += mid - i;
            memcpy(scratch + k, items + j, (hi - j) * sizeof *items);
        }
        uint32_t *t = items;
        items = scratch;
        scratch = t;
    }
}

static uint64_t checksum(const uint32_t *items, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ items[i]) * 1099511628211ULL;
    return h;
}

int main(int argc, char **argv) {
    size_t n = argc > 1 ? (size_t)atol(argv[1]) : 100000;
    struct record *records = malloc(n * sizeof *records);
    uint32_t *items = malloc(n * sizeof *items);
    uint32_t *scratch = malloc(n * sizeof *scratch);
    if (!records || !items || !scratch) {
        fputs("out of memory\n", stderr);
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        records[i].key = next_random();
        records[i].payload[0] = (uint32_t)i;
        records[i].payload[1] = records[i].payload[2] = 0;
        items[i] = next_random();
    }
    qsort(records, n, sizeof *records, by_key);
    uint64_t h = 0;
    for (size_t i = 0; i < n; i++)
        h = h * 31 + records[i].payload[0];
    merge_sort(items, scratch, n);
    /* after an odd number of passes the result is in scratch */
    size_t passes = 0;
    for (size_t width = 1; width < n; width *= 2)
        passes++;
    const uint32_t *sorted = passes % 2 ? scratch : items;
    for (size_t i = 1; i < n; i++)
        if (sorted[i - 1] > sorted[i]) {
            printf("not sorted at %zu\n", i);
            return 1;
        }
    printf("records %llu items %llu\n", (unsigned long long)h,
           (unsigned long long)checksum(sorted, n));
    return 0;
}
