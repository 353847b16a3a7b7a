/* placeholder: being written */
typedef int seqr_placeholder_config;
