/* route: the RCPT-stage routing decision that needs no directory: is this recipient ours,
 * always accepted, or a relay attempt? Pure (config and parsed path in, verdict out). */
#ifndef SLUICE_POLICY_ROUTE_H
#define SLUICE_POLICY_ROUTE_H

#include <stdbool.h>

#include "conf/conf.h"
#include "smtp/addr.h"

enum route_verdict {
    ROUTE_LOCAL,          /* a local domain: ask the directory */
    ROUTE_POSTMASTER,     /* postmaster, always accepted (RFC 5321 §4.5.1) */
    ROUTE_RELAY,          /* not ours and the client may relay */
    ROUTE_RELAY_DENIED,   /* not ours, or a routing trick inside ours (B10) */
};

/* True when domain (lower case) is one of the configured local domains. */
bool route_is_local_domain(const struct config *c, const char *domain);

/* Decide for one recipient. may_relay is true for clients allowed to relay (none until
 * authentication exists). Local parts holding '%', '!' or '@' in a local domain are refused
 * like relaying, because a later hop might route on them (the "percent hack"). */
enum route_verdict route_rcpt(const struct config *c, const struct addr_path *rcpt, bool may_relay);

#endif
