/* libFuzzer target for conf_parse (src/conf/conf.c): any bytes must yield either a config or
 * errors, with every error naming a line inside the input (or 0 for the whole file), without
 * crash, leak or sanitizer report. A parsed config is checked against the limits the parser
 * promises, so a range check that lets a value through is a finding too. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct conf_errors errs;
    unsigned lines = 1;
    struct config *c = conf_parse((const char *)data, size, &errs);

    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    if (c == NULL) {
        if (errs.n == 0 || errs.n > CONF_ERRORS_MAX)
            abort();
        for (size_t i = 0; i < errs.n; i++) {
            if (errs.e[i].line > lines || memchr(errs.e[i].msg, '\0', sizeof errs.e[i].msg) == NULL)
                abort();
        }
        return 0;
    }
    if (errs.n != 0 || c->nlisteners == 0 || c->nlisteners > CONF_LISTENERS_MAX ||
        c->ndomains > CONF_DOMAINS_MAX || c->limits.command_line < 512 ||
        c->limits.data_line < 1000 || c->limits.recipients < 1 || c->limits.message_size < 1024 ||
        c->timeouts.command > 86400000u || c->spool == NULL)
        abort();
    for (size_t i = 0; i < c->nlisteners; i++) {
        if (c->listeners[i].name == NULL || c->listeners[i].address == NULL)
            abort();
        if (c->listeners[i].tls != CONF_TLS_NONE && c->tls_certificate == NULL)
            abort();
    }
    for (size_t i = 0; i < c->ndomains; i++) {
        for (const char *p = c->domains[i]; *p != '\0'; p++)
            if (*p >= 'A' && *p <= 'Z')
                abort();
    }
    conf_free(c);
    return 0;
}
