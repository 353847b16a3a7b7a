/* sim/delay.h — holds SOAP answers back for the injected latency without a
 * thread per waiting call.
 *
 * The simulator runs libmicrohttpd on an epoll thread pool with
 * suspend/resume allowed. A call that must wait latencyMs is suspended
 * (MHD_suspend_connection) and handed here with its due time; one timer
 * thread resumes each at its time, and libmicrohttpd calls the handler again,
 * which then answers. So 400 calls waiting 20 ms cost one sleeping thread,
 * not 400, and the pool's threads only ever do work.
 *
 * Thread-safe. The connections are borrowed: libmicrohttpd owns them. */
#ifndef SEQR_SIM_DELAY_H
#define SEQR_SIM_DELAY_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>

/* Starts the timer thread; false if it cannot be created. */
bool sim_delay_start(void);
/* Suspends conn and resumes it at due_mono_ms (see sim_mono_ms). False, with
 * conn left running, when the simulator is stopping or out of memory: the
 * caller then answers at once. Call only from conn's request handler. */
bool sim_delay_hold(struct MHD_Connection *conn, int64_t due_mono_ms);
/* Resumes every held connection and stops the timer thread; later holds
 * fail. Call before MHD_stop_daemon (which needs no connection suspended). */
void sim_delay_stop(void);

#endif
