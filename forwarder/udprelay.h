/* udprelay.h - pgw-forwarder's UDP relay (udp_relay on). pgw-agent TPROXYs the UDP of every active
 * client whose proxy carries UDP (pgw-healthd's check) to the TPROXY port; here each client gets
 * one SOCKS5 UDP ASSOCIATE session with its own proxy (RFC 1928 7: the TCP control connection and
 * the relay address it names), shared by all its flows. Datagrams go up wrapped in the RFC 1928
 * header; replies come back to the client from the address it sent to (a transparent socket bound
 * to it per flow). Fail closed: an unknown, blocked or not-UDP client's datagrams are dropped,
 * never sent any other way; a session whose control connection dies is closed with its flows; a
 * table reload closes every session its client may no longer have. One thread, own event loop. */
#ifndef FWD_UDPRELAY_H
#define FWD_UDPRELAY_H

#include "relay.h"

#include <stdint.h>
#include <stdio.h>

struct udprelay;

/* Listen on port (IP_TRANSPARENT, IPv4 and IPv6) and start the thread. Without the capability
 * for transparent sockets (CAP_NET_ADMIN) the relay stays off: *out is still set, and its stats
 * say why (UDP then reaches no socket on the gateway: dropped there). */
int udprelay_start(struct fwd_shared *sh, uint16_t port, struct udprelay **out);
void udprelay_stop(struct udprelay *r);
/* The table was reloaded: close the sessions it no longer allows (from any thread). */
void udprelay_revalidate(struct udprelay *r);
/* 1 when the relay's loop ticked within max_ms (or it is off). */
int udprelay_alive(struct udprelay *r, uint64_t max_ms);
/* ,"udp":{...}: totals, drops by reason, per proxy (the forwarder's stats, fwdctl.h). */
void udprelay_write_stats(struct udprelay *r, FILE *out);

#endif
