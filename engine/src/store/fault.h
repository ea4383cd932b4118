/* store_fault: fault injection in the store's file I/O (RBK_FAULT_IO),
 * for the fault-injection tests; see store_fault.c. */
#ifndef RBK_STORE_FAULT_H
#define RBK_STORE_FAULT_H

/* Install the fault VFS when RBK_FAULT_IO asks for one (once per process). */
void rbk_store_fault_install(void);

#endif
