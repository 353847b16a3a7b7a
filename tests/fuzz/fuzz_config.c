/* fuzz_config.c — libFuzzer harness: any bytes as a configuration file. */
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz-config", 0);
    if (fd < 0)
        return 0;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    config cfg;
    buf errors = BUF_INIT, warnings = BUF_INIT;
    config_load(path, &cfg, &errors, &warnings);
    config_free(&cfg);
    buf_free(&errors);
    buf_free(&warnings);
    close(fd);
    return 0;
}
