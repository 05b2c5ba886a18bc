/*
 * files — the embedded default target: a certificate, its key, chain and CA as
 * files in a local folder (a mail server's MailRoot, an nginx ssl folder).
 *
 * Promises: every file is written atomically (temp file in the same folder,
 * fsync, rename) with the configured mode whatever the umask; the key is
 * written first and the certificate last, so whoever sees the new certificate
 * finds its key already in place; an unencrypted key is never written inside a
 * git work tree; the optional reload command runs as an argv (no shell) with a
 * timeout. Settings are documented in the schema (files.c).
 */
#ifndef CW_TARGETS_FILES_H
#define CW_TARGETS_FILES_H

#include "common/node.h"
#include "targets/target.h"

extern const cw_target_ops cw_files_target;

/* 1 when no file name template of this target's settings contains "{name}": the folder
 * then holds one certificate only, and two certificates deployed to it would overwrite
 * each other (the inventory refuses that). 0 otherwise. */
int cw_files_single_slot(const cw_node *config);

#endif
