/* Fibers three deep, switched by the stack-switching instructions of fiber.wat (preloaded
   as `env`; build with -Wl,--import-table). main drains the `total` fiber, which resumes
   `scale`, which resumes `walk`, which walks a linked list and yields its values: inside
   walk, three continuations are running. Each function prints its variables as
   NAME=VALUE, spelled as gdb prints them, right before it resumes a fiber or calls
   checkpoint(), where the tests stop: every variable a debugger shows must be the printed
   value or optimized out. Given the argument `corrupt`, the list's last link points outside
   linear memory and walk traps there, in value_of (inlined into walk at -O2). */
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

#define FIBER_IMPORT(name) __attribute__((import_module("env"), import_name(#name)))
FIBER_IMPORT(fiber_new) int fiber_new(int (*body)(void *), void *arg);
FIBER_IMPORT(fiber_resume) int fiber_resume(int fiber);
FIBER_IMPORT(fiber_yield) void fiber_yield(int value);
FIBER_IMPORT(fiber_done) int fiber_done(int fiber);

struct node {
    int v;
    struct node *next;
};

struct stage {
    const char *name;
    int source;
    int factor;
};

struct totals {
    int count;
    int sum;
};

static volatile int checkpoints;

__attribute__((noinline)) void checkpoint(void) {
    checkpoints += 1;
}

static int value_of(const struct node *n) {
    return n->v; /* walk reads a node */
}

int walk(void *arg) {
    struct node *list = arg;
    int count = 0;
    for (struct node *n = list; n; n = n->next) {
        int v = value_of(n);
        count += 1;
        printf("walk: arg=%p list=%p count=%d v=%d\n", arg, (void *)list, count, v);
        printf("walk: n=%p *n={v = %d, next = %p}\n", (void *)n, n->v, (void *)n->next);
        checkpoint(); /* three fibers deep */
        fiber_yield(n->v);
    }
    return count;
}

int scale(void *arg) {
    struct stage *st = arg;
    int value = 0;
    for (;;) {
        printf("scale: arg=%p st=%p value=%d\n", arg, (void *)st, value);
        value = fiber_resume(st->source); /* scale resumes walk */
        if (fiber_done(st->source))
            return 0;
        fiber_yield(value * st->factor);
    }
}

int total(void *arg) {
    struct stage *st = arg;
    struct totals t = {0, 0};
    int value = 0;
    for (;;) {
        printf("total: arg=%p st=%p t={count = %d, sum = %d} value=%d\n", arg, (void *)st, t.count, t.sum,
               value);
        value = fiber_resume(st->source); /* total resumes scale */
        if (fiber_done(st->source))
            return t.sum;
        t.count += 1;
        t.sum += value;
        fiber_yield(t.sum);
    }
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    struct node *list = 0;
    for (int i = 3; i >= 1; i--) {
        struct node *n = malloc(sizeof *n);
        n->v = i * 11;
        n->next = list;
        list = n;
    }
    if (argc > 1 && strcmp(argv[1], "corrupt") == 0)
        list->next->next->next = (struct node *)0x7ffffff0;
    struct stage walker = {"walk", fiber_new(walk, list), 10};
    struct stage scaler = {"scale", fiber_new(scale, &walker), 1};
    int summer = fiber_new(total, &scaler);
    int sum = 0;
    while (!fiber_done(summer)) {
        printf("main: argc=%d argv=%p list=%p summer=%d sum=%d\n", argc, (void *)argv, (void *)list, summer, sum);
        printf("main: walker={name = %p \"%s\", source = %d, factor = %d}\n", (void *)walker.name, walker.name,
               walker.source, walker.factor);
        printf("main: scaler={name = %p \"%s\", source = %d, factor = %d}\n", (void *)scaler.name, scaler.name,
               scaler.source, scaler.factor);
        sum = fiber_resume(summer); /* main resumes total */
    }
    printf("sum=%d\n", sum);
    return 0;
}
