/* events.h — the events that tell the shop what changed: their public JSON
 * shape, and a hub where threads wait for new ones (the event feed's
 * long-poll, the per-invoice stream, the webhook worker).
 *
 * Event rows are written by the store in the transaction of the change they
 * tell of (store.h, "events"). The hub learns of them through the store's
 * event hook and wakes whoever waits: waiting costs a blocked thread, never
 * a busy one, and the number of waiters is bounded ([http] max_streams)
 * so that waits cannot starve the API's connections; past the bound a wait
 * is refused (the caller answers 503 with Retry-After). Thread-safe. */
#ifndef SEQR_EVENTS_H
#define SEQR_EVENTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "store.h"

typedef struct events_hub events_hub;

/* st is borrowed and must outlive the hub; the hub installs itself as st's
 * event hook. max_waiters bounds events_hub_enter(). */
events_hub *events_hub_new(store *st, int max_waiters);
/* Wakes every waiter for good (they return at once) and frees the hub
 * after they have left. */
void events_hub_free(events_hub *hub);

/* Wakes every waiter for good: they return at once, and no new wait
 * begins (events_hub_enter fails). Call before stopping the HTTP server. */
void events_hub_close(events_hub *hub);

/* Another function to call (with the store's lock held: it must only signal)
 * whenever events were committed, for any invoice; one listener (the
 * webhook worker). */
void events_hub_listen(events_hub *hub, void (*fn)(void *ud), void *ud);

/* One waiting thread's place: it is woken only by events of its invoice
 * (or by every event when it waits for any invoice), so a commit wakes the
 * threads it concerns, not all of them. */
typedef struct events_waiter events_waiter;

/* Takes one of the max_waiters places, for events of invoice_id (local id;
 * 0 = any invoice); NULL when all are taken or the hub is shutting down. */
events_waiter *events_hub_enter(events_hub *hub, int64_t invoice_id);
void events_hub_leave(events_hub *hub, events_waiter *w);
/* A counter that moves whenever events w waits for were committed. */
uint64_t events_hub_seq(events_hub *hub, events_waiter *w);
/* Blocks until w's counter differs from seen, until deadline_ms (monotonic
 * clock, see events_now_mono_ms) or until the hub shuts down; returns the
 * counter. */
uint64_t events_hub_wait(events_hub *hub, events_waiter *w, uint64_t seen, int64_t deadline_ms);
/* Places taken now, and the bound. */
void events_hub_waiters(events_hub *hub, int *now, int *max);
bool events_hub_closing(events_hub *hub);

int64_t events_now_mono_ms(void);

/* The event in the contract's shape (caller decrefs):
 * {"id", "type", "createdAt", "invoiceReference", "kind", "data"} with data the
 * invoice or refund as it was after the change, money as decimal strings
 * and times as ISO 8601. NULL only when the stored data is not JSON. */
json_t *events_render(const store_event *ev);

/* The Standard Webhooks message id of an event: "evt_<id>". */
void events_msg_id(int64_t id, char out[static 32]);

#endif
