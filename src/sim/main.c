#include <stdio.h>
int main(void) { puts("seqr-sim: not yet"); return 1; }
