/* placeholder */
#ifndef SEQR_ENVELOPE_H
#define SEQR_ENVELOPE_H
#endif
