/* The running node's own state (see node.h). */
#include "node.h"

#include <time.h>

int64_t node_uptime(const struct node *n)
{
    return (int64_t)time(NULL) - n->start_time;
}

int node_has_chain(const struct node *n)
{
    int phase = atomic_load(&((struct node *)n)->phase);
    return n->chain && (phase == NODE_PHASE_WARMUP || phase == NODE_PHASE_READY);
}
