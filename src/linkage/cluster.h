/*
 * src/linkage/cluster.h
 *
 * The clusters of a run's links, in memory (cluster.c): link_components()
 * returns them as rows; cluster_table.c writes them with each record into
 * the run's cluster table.
 */
#ifndef CAREDATA_LINKAGE_CLUSTER_H
#define CAREDATA_LINKAGE_CLUSTER_H

typedef struct UnionFind UnionFind;
typedef UnionFind LinkClusters;

extern LinkClusters *link_clusters_build(const char *links_query, bool one_to_one,
										 const char *nhs_query, MemoryContext cxt);
extern bool link_cluster_of(LinkClusters *clusters, int64 rid, int64 *cluster, bool *refused);
extern void link_clusters_free(LinkClusters *clusters);

#endif
