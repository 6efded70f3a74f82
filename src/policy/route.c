/* route: RCPT routing decisions (see route.h). Pure; called by smtp/session.
 * Source routes were already stripped by addr_parse_path (RFC 5321 §4.1.1.3 says they may be
 * ignored), so "<@us:victim@remote>" is judged by its final domain. */
#include "policy/route.h"

#include <string.h>

bool route_is_local_domain(const struct config *c, const char *domain)
{
    for (size_t i = 0; i < c->ndomains; i++)
        if (strcmp(c->domains[i], domain) == 0)
            return true;
    return false;
}

enum route_verdict route_rcpt(const struct config *c, const struct addr_path *rcpt, bool may_relay)
{
    bool tricky = strpbrk(rcpt->local, "%!@") != NULL;

    if (rcpt->domain[0] == '\0')
        return addr_is_postmaster(rcpt) ? ROUTE_POSTMASTER : ROUTE_RELAY_DENIED;
    if (!rcpt->literal && route_is_local_domain(c, rcpt->domain)) {
        /* Sluice has no %-hack: for a client that may relay, "victim%remote@us" is just a
         * local part the directory does not know (550 at RCPT, not a bounce later); for any
         * other client it is refused as the relay attempt it looks like (B10). */
        if (tricky)
            return may_relay ? ROUTE_LOCAL : ROUTE_RELAY_DENIED;
        return addr_is_postmaster(rcpt) ? ROUTE_POSTMASTER : ROUTE_LOCAL;
    }
    return may_relay ? ROUTE_RELAY : ROUTE_RELAY_DENIED;
}
