/*
 * softether — the SoftEther VPN Server as a target (type: softether), driven
 * through its admin tool vpncmd. See ../../shared/devices/softether.md for the
 * device's quirks this adapter is built around.
 *
 * Promises:
 *  - one slot: the server's single certificate, which serves every protocol
 *    (SSTP, OpenVPN, L2TP, HTTPS admin), so there is no binding step;
 *  - every vpncmd call passes /PROGRAMMING (never a password prompt), reads
 *    stdin from /dev/null and is killed at the configured timeout;
 *  - the admin password is resolved from its env:/file: reference at open and
 *    reaches vpncmd only as "/PASSWORD:..." in its argv (vpncmd has no other
 *    non-interactive way: other local users can see it in the process table
 *    while a call runs); it is never logged and never put in an error message;
 *  - files handed to vpncmd (the unencrypted key among them) live in a fresh
 *    0700 folder under the engine's work folder and are removed after every
 *    call, whether it succeeded or not;
 *  - an RSA key under 2048 bits is refused before it reaches the server: the
 *    server accepts it and then fails every TLS handshake, admin included;
 *  - verify() does its own TLS handshake with the listener and checks that it
 *    serves what ServerCertGet reports.
 * Settings are documented in the schema (softether.c).
 */
#ifndef CW_TARGETS_SOFTETHER_H
#define CW_TARGETS_SOFTETHER_H

#include "targets/target.h"

extern const cw_target_ops cw_softether_target;

#endif
