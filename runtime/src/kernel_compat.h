/* kernel_compat.h — adapting an opened BPF object to the running kernel (kernel_compat.c). Used by the
 * runtime and by ksc itself (src/kernel/ffi.rs); not part of the ABI compiled code calls. */
#ifndef KSRT_KERNEL_COMPAT_H
#define KSRT_KERNEL_COMPAT_H

#include <bpf/libbpf.h>

/* BPF_F_LINK of Linux 6.4's UAPI (struct_ops maps registered through links); the runtime builds
 * against older UAPI headers too (runtime/README.md). */
#define KSRT_BPF_F_LINK (1U << 13)

/* Call between bpf_object__open* and bpf_object__load. On a kernel without struct_ops links
 * (before Linux 6.4) clears BPF_F_LINK on the object's struct_ops maps, so that libbpf creates
 * them the way that kernel accepts and bpf_map__attach_struct_ops registers them by a map update
 * (bpf_link__destroy then unregisters by deleting the element). Returns how many maps changed;
 * 0 also when the kernel has links or the probe could not tell. */
int ksrt_adapt_struct_ops(struct bpf_object *obj);

#endif /* KSRT_KERNEL_COMPAT_H */
