/* A linked list, a struct and an array, three calls deep: the C program of the
   source-level debugging tests. Each function prints its variables as NAME=VALUE, spelled
   as gdb prints them, then calls checkpoint(), where the tests stop: every variable a
   debugger shows in the frames above must be the printed value or optimized out. */
#include <stdio.h>
#include <stdlib.h>

struct node {
    int v;
    struct node *next;
};

struct point {
    int x;
    short y;
    double w;
};

static int counter = 5;
static volatile int checkpoints;

__attribute__((noinline)) void checkpoint(void) {
    checkpoints += 1;
}

int leaf(struct node *n, int k) {
    int sum = 0;
    for (struct node *p = n; p; p = p->next)
        sum += p->v * k;
    counter += 1;
    printf("leaf: n=%p k=%d sum=%d counter=%d\n", (void *)n, k, sum, counter);
    printf("leaf: *n={v = %d, next = %p} n->next->v=%d\n", n->v, (void *)n->next, n->next->v);
    checkpoint();
    return sum; /* leaf returns */
}

int mid(struct node *head, int a) {
    int arr[5] = {10, 20, 30, 40, 50};
    struct point pt = {a, 7, 2.5};
    const char *label = "mid";
    int *third = &arr[3];
    printf("mid: head=%p a=%d arr={%d, %d, %d, %d, %d} pt={x = %d, y = %d, w = %g}\n", (void *)head, a,
           arr[0], arr[1], arr[2], arr[3], arr[4], pt.x, pt.y, pt.w);
    printf("mid: label=%p \"%s\" third=%p\n", (void *)label, label, (void *)third);
    checkpoint();
    return leaf(head->next, a + arr[3]) + pt.y;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    struct node *head = 0;
    for (int i = 3; i >= 1; i--) {
        struct node *n = malloc(sizeof *n);
        n->v = i * 11;
        n->next = head;
        head = n;
    }
    printf("main: head=%p\n", (void *)head);
    checkpoint();
    printf("result=%d\n", mid(head, 2));
    return 0;
}
