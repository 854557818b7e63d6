/*-------------------------------------------------------------------------
 *
 * audit.h
 *		The audit log's witness in the server log (src/audit.c).
 *
 * src/audit.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_AUDIT_H
#define CAREDATA_AUDIT_H

extern void audit_init(void);

/* whether this transaction appended an entry still to be committed */
extern bool audit_appended_in_transaction(void);

#endif							/* CAREDATA_AUDIT_H */
