/*-------------------------------------------------------------------------
 *
 * pg_compat.h
 *		What differs between the PostgreSQL major versions caredata builds
 *		against (15 and 17), in one place.
 *
 * Most of caredata uses only stable server APIs.  What reaches into
 * private structures says so here, and is compiled only for the versions
 * it was checked against; on any other it is left out, which can cost
 * speed, never change an answer.
 *
 * src/base/pg_compat.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_PG_COMPAT_H
#define CAREDATA_PG_COMPAT_H

#if PG_VERSION_NUM < 150000
#error "caredata needs PostgreSQL 15 or later"
#endif

/* varlena access (VARDATA_ANY, SET_VARSIZE, ...): from 16 in its own header */
#if PG_VERSION_NUM >= 160000
#include "varatt.h"
#endif

/*
 * The sequential scan read-ahead (src/objection/scan_lookahead.c) reads the page-mode
 * fields of heapam's scan descriptor (HeapScanDescData: rs_cbuf, rs_cblock,
 * rs_ntuples, rs_vistuples[], rs_cindex), as heapgettup_pagemode() does.
 * Checked against 15 and 17.
 */
#if PG_VERSION_NUM < 180000
#define CAREDATA_SCAN_LOOKAHEAD 1
#endif

/* a relation's file (relfilenumber): from 16 in rd_locator */
#if PG_VERSION_NUM >= 160000
#define CAREDATA_REL_FILE(rel) ((Oid) (rel)->rd_locator.relNumber)
#else
#define CAREDATA_REL_FILE(rel) ((rel)->rd_node.relNode)
#endif

#endif							/* CAREDATA_PG_COMPAT_H */
