/*-------------------------------------------------------------------------
 *
 * hooks.h
 *		Every hook caredata installs, in one place (src/hooks.c).
 *
 * src/hooks.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_HOOKS_H
#define CAREDATA_HOOKS_H

extern void hooks_init(void);

#endif							/* CAREDATA_HOOKS_H */
