/* A loop whose variables live in Wasm locals that the engine keeps in registers while it
   runs: h is written after the call to mix on every iteration, so its frame slot is stale
   at the marked line. The program prints what each iteration left; the tests stop in the
   loop (and in mix, called from it) and compare. */
#include <stdio.h>

#define N 40
struct cell {
    unsigned v;
    struct cell *next;
};

static struct cell cells[N];
static unsigned hs[N];
static double ws[N];
static volatile unsigned count = N; /* not a constant: the loops are not unrolled */
static volatile unsigned calls;

__attribute__((noinline)) unsigned mix(unsigned h, unsigned v) {
    calls += 1;
    return h * 31u + v;
}

int main(void) {
    unsigned n = count;
    for (unsigned k = 0; k < n; k++) {
        cells[k].v = k * 3;
        cells[k].next = k + 1 < n ? &cells[k + 1] : 0;
    }
    unsigned h = 7, k = 0;
    double w = 1.0;
    for (struct cell *c = cells; c; k++) {
        struct cell *next = c->next;
        w = w * 1.5 + k;
        ws[k] = w;
        h = mix(h, c->v) + (unsigned)w;
        hs[k] = h; /* an iteration ends */
        c = next;
    }
    for (unsigned k = 0; k < n; k++)
        printf("loop: k=%u h=%u w=%.17g next=%p\n", k, hs[k], ws[k], (void *)cells[k].next);
    return 0;
}
