/*
 * src/linkage/id_map.c
 *
 * A map of bigint ids to bigint values in memory (id_map.h).
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/memutils.h"

#include "id_map.h"

#define ID_MAP_FIRST	65536
#define DENSE_SLOTS		4		/* at most this many slots an id */

static int
cmp_id(const void *a, const void *b)
{
	int64		x = ((const IdPair *) a)->id;
	int64		y = ((const IdPair *) b)->id;

	return (x > y) - (x < y);
}

static void
too_big(IdMap *m)
{
	ereport(ERROR,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg("%s needs more than maintenance_work_mem (%d kB)", m->what, maintenance_work_mem),
			 errhint("%s", m->hint)));
}

void
id_map_init(IdMap *m, const char *what, const char *hint)
{
	memset(m, 0, sizeof(IdMap));
	m->what = what;
	m->hint = hint;
	m->cap = ID_MAP_FIRST;
	m->pairs = palloc_extended(m->cap * sizeof(IdPair), MCXT_ALLOC_HUGE);
	m->sorted = true;
	m->lo = PG_INT64_MAX;
	m->hi = PG_INT64_MIN;
}

void
id_map_add(IdMap *m, int64 id, int64 value)
{
	if (m->n == m->cap)
	{
		int64		limit = (int64) maintenance_work_mem * 1024 / sizeof(IdPair);

		if (m->cap >= limit)
			too_big(m);
		m->cap = Min(m->cap * 2, limit);
		m->pairs = repalloc_huge(m->pairs, m->cap * sizeof(IdPair));
	}
	if (m->n > 0 && id <= m->pairs[m->n - 1].id)
		m->sorted = false;
	m->lo = Min(m->lo, id);
	m->hi = Max(m->hi, id);
	m->pairs[m->n].id = id;
	m->pairs[m->n].value = value;
	m->n++;
}

void
id_map_finish(IdMap *m, const char *twice)
{
	uint64		range = (uint64) m->hi - (uint64) m->lo + 1;

	/* ids close together and in no order: an array indexed by id, no sort */
	if (m->n > 0 && !m->sorted && range <= (uint64) m->n * DENSE_SLOTS &&
		range * (sizeof(int64) + sizeof(bool)) <= (uint64) maintenance_work_mem * 1024)
	{
		m->value = palloc_extended(range * sizeof(int64), MCXT_ALLOC_HUGE);
		m->has = palloc_extended(range * sizeof(bool), MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
		for (int64 i = 0; i < m->n; i++)
		{
			uint64		at = (uint64) m->pairs[i].id - (uint64) m->lo;

			if (m->has[at])
				ereport(ERROR, (errcode(ERRCODE_UNIQUE_VIOLATION), errmsg("%s", twice)));
			m->has[at] = true;
			m->value[at] = m->pairs[i].value;
		}
		pfree(m->pairs);
		m->pairs = NULL;
		return;
	}
	if (!m->sorted)
	{
		qsort(m->pairs, m->n, sizeof(IdPair), cmp_id);
		for (int64 i = 1; i < m->n; i++)
			if (m->pairs[i].id == m->pairs[i - 1].id)
				ereport(ERROR, (errcode(ERRCODE_UNIQUE_VIOLATION), errmsg("%s", twice)));
	}
}

bool
id_map_get(IdMap *m, int64 id, int64 *value)
{
	int64		lo = 0,
				hi = m->n;

	if (m->value != NULL)
	{
		uint64		at = (uint64) id - (uint64) m->lo;

		if (id < m->lo || id > m->hi || !m->has[at])
			return false;
		*value = m->value[at];
		return true;
	}
	if (m->cursor < m->n && m->pairs[m->cursor].id == id)
	{
		*value = m->pairs[m->cursor++].value;
		return true;
	}
	while (lo < hi)
	{
		int64		mid = lo + (hi - lo) / 2;

		if (m->pairs[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < m->n && m->pairs[lo].id == id)
	{
		*value = m->pairs[lo].value;
		m->cursor = lo + 1;
		return true;
	}
	return false;
}
