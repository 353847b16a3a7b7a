/* placeholder */
#ifndef SEQR_SIM_H
#define SEQR_SIM_H
#endif
