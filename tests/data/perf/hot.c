/* Freestanding C whose time goes to one loop, for perf's source lines (`--sort srcline`):
   built with `-target wasm32-freestanding -nostdlib`, run with `--invoke spin N`. */
__attribute__((export_name("spin"))) unsigned spin(int n) {
    unsigned x = 1;
    for (int i = 0; i < n; i++)
        x = x * 31 + (unsigned)i; /* the hot line */
    return x;
}
