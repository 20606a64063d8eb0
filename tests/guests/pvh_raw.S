/* pvh_raw.S: a guest that is not built with the SDK: a bare 64-bit ELF whose
 * only way in is a PVH note (XEN_ELFNOTE_PHYS32_ENTRY). It checks what the
 * PVH boot ABI promises at its 32-bit entry (protected mode, paging off,
 * EBX = hvm_start_info with the right magic, a command line, a memory map),
 * prints through the 8250 UART at 0x3f8 and exits through the ember exit
 * port with 42 if all held, 1 if not.
 * Expected output: "pvh: magic ok, cmdline: <the command line>". */
    .section .note.Xen, "a", @note
    .balign 4
    .long 4, 4, 18          /* namesz, descsz, XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .balign 4
    .long pvh_start

    .text
    .code32
    .globl pvh_start
pvh_start:
    mov $0x80000, %esp      /* PVH gives no stack: use conventional memory */
    mov %cr0, %eax          /* paging must be off, protection on */
    test $0x80000000, %eax
    jnz bad
    test $1, %eax
    jz bad
    cmpl $0x336ec578, (%ebx) /* hvm_start_info.magic */
    jne bad
    mov 48(%ebx), %eax      /* memmap_entries */
    test %eax, %eax
    jz bad
    mov $msg, %esi
    call puts
    mov 24(%ebx), %esi      /* cmdline_paddr (low half) */
    call puts
    mov $nl, %esi
    call puts
    mov $42, %eax
    jmp out
bad:
    mov $1, %eax
out:
    mov $0x501, %dx
    outl %eax, %dx
1:  hlt
    jmp 1b

/* puts: ESI = NUL-terminated string, byte by byte to the UART. */
puts:
    mov $0x3f8, %dx
2:  lodsb
    test %al, %al
    jz 3f
    outb %al, %dx
    jmp 2b
3:  ret

    .section .rodata
msg: .asciz "pvh: magic ok, cmdline: "
nl:  .asciz "\n"
