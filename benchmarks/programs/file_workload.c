/* A file workload for the benchmark set: what a command-line tool does with files, through
 * wasi-libc's stdio and POSIX calls on a preopened directory `/data`. It writes blobs in
 * large blocks, checksums them, copies them, writes and parses a text file line by line
 * (default stdio buffering: many small reads and writes), reads records at random offsets,
 * then lists, stats, renames and deletes everything. It prints one line per phase, with
 * checksums, so a run that skips work cannot look fast.
 *
 * Usage: file_workload SCALE (1 = 8 MiB of blobs, 50,000 text lines, 5,000 seeks). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BLOBS 8
#define BLOB_SIZE (1 << 20)
#define BLOCK (64 * 1024)

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint64_t next_random(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static uint64_t fnv1a(uint64_t hash, const unsigned char *data, size_t n) {
    for (size_t i = 0; i < n; i++)
        hash = (hash ^ data[i]) * 0x100000001B3ull;
    return hash;
}

static FILE *open_or_die(const char *path, const char *mode) {
    FILE *f = fopen(path, mode);
    if (!f) {
        perror(path);
        exit(1);
    }
    return f;
}

static unsigned char block[BLOCK];

static void write_blobs(int scale) {
    char path[64];
    uint64_t written = 0;
    for (int b = 0; b < BLOBS * scale; b++) {
        snprintf(path, sizeof path, "/data/blob%d.bin", b);
        FILE *f = open_or_die(path, "wb");
        for (int chunk = 0; chunk < BLOB_SIZE / BLOCK; chunk++) {
            for (size_t i = 0; i < BLOCK; i += 8) {
                uint64_t r = next_random();
                memcpy(block + i, &r, 8);
            }
            written += fwrite(block, 1, BLOCK, f);
        }
        fclose(f);
    }
    printf("write: %d blobs, %llu bytes\n", BLOBS * scale, (unsigned long long)written);
}

static void checksum_and_copy_blobs(int scale) {
    char path[64], copy[64];
    uint64_t hash = 0xCBF29CE484222325ull, copied = 0;
    for (int b = 0; b < BLOBS * scale; b++) {
        snprintf(path, sizeof path, "/data/blob%d.bin", b);
        snprintf(copy, sizeof copy, "/data/copy%d.bin", b);
        FILE *in = open_or_die(path, "rb"), *out = open_or_die(copy, "wb");
        size_t n;
        while ((n = fread(block, 1, 16 * 1024, in)) > 0) {
            hash = fnv1a(hash, block, n);
            copied += fwrite(block, 1, n, out);
        }
        fclose(in);
        fclose(out);
    }
    printf("checksum and copy: %llu bytes, fnv1a %016llx\n", (unsigned long long)copied,
           (unsigned long long)hash);
}

static const char *words[] = {"alpha", "bravo", "charlie", "delta", "echo", "foxtrot"};

static void text_file(int scale) {
    int lines = 50000 * scale;
    FILE *f = open_or_die("/data/log.csv", "w");
    for (int i = 0; i < lines; i++)
        fprintf(f, "%d,%llu,%s\n", i, (unsigned long long)(next_random() % 100000),
                words[i % 6]);
    fclose(f);
    f = open_or_die("/data/log.csv", "r");
    char line[128];
    long long total = 0;
    int parsed = 0, word_letters = 0;
    while (fgets(line, sizeof line, f)) {
        char *field = strchr(line, ',');
        total += strtoll(field + 1, &field, 10);
        word_letters += (int)strlen(field + 1) - 1;
        parsed++;
    }
    fclose(f);
    printf("text: %d lines, sum %lld, letters %d\n", parsed, total, word_letters);
}

static void random_reads(int scale) {
    FILE *f = open_or_die("/data/blob0.bin", "rb");
    uint64_t hash = 0xCBF29CE484222325ull;
    unsigned char record[64];
    for (int i = 0; i < 5000 * scale; i++) {
        long offset = (long)(next_random() % (BLOB_SIZE / sizeof record)) * sizeof record;
        fseek(f, offset, SEEK_SET);
        if (fread(record, 1, sizeof record, f) != sizeof record) {
            printf("short read at %ld\n", offset);
            exit(1);
        }
        hash = fnv1a(hash, record, sizeof record);
    }
    fclose(f);
    printf("random reads: %d records, fnv1a %016llx\n", 5000 * scale, (unsigned long long)hash);
}

static void list_and_clean_up(void) {
    static char names[1024][64];
    int count = 0;
    DIR *dir = opendir("/data");
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL && count < 1024)
        if (entry->d_name[0] != '.')
            snprintf(names[count++], sizeof names[0], "%s", entry->d_name);
    closedir(dir);
    char path[100], renamed[100];
    long long bytes = 0;
    int renames = 0, removed = 0;
    for (int i = 0; i < count; i++) {
        struct stat st;
        snprintf(path, sizeof path, "/data/%s", names[i]);
        snprintf(renamed, sizeof renamed, "/data/old-%s", names[i]);
        if (stat(path, &st) == 0)
            bytes += st.st_size;
        renames += rename(path, renamed) == 0;
        removed += unlink(renamed) == 0;
    }
    printf("directory: %d files, %lld bytes, %d renamed, %d removed\n", count, bytes, renames,
           removed);
}

int main(int argc, char **argv) {
    int scale = argc > 1 ? atoi(argv[1]) : 1;
    write_blobs(scale);
    checksum_and_copy_blobs(scale);
    text_file(scale);
    random_reads(scale);
    list_and_clean_up();
    return 0;
}
