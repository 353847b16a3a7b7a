/* placeholder */
#ifndef SEQR_PARSE_H
#define SEQR_PARSE_H
#endif
