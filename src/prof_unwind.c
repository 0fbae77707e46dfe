/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Heap profiling's cached unwinder (see prof_unwind.h): the .eh_frame_hdr
 * search, the CIE/FDE reader and the call-frame program interpreter that
 * turn a code address into a rule, the table of rules by address, and the
 * frame walk. Owns prof_unwind_lock and the table.
 */
#include "alloc/internal/prof_unwind.h"

#include <link.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>

#include "alloc/internal/mutex.h"
#include "alloc/internal/util.h"

/* DWARF register numbers (x86-64 psABI) and the call-frame opcodes used. */
enum {
	UW_REG_RBP = 6,
	UW_REG_RSP = 7,
	UW_REG_RA = 16,
};

enum {
	DW_CFA_nop = 0x00,
	DW_CFA_set_loc = 0x01,
	DW_CFA_advance_loc1 = 0x02,
	DW_CFA_advance_loc2 = 0x03,
	DW_CFA_advance_loc4 = 0x04,
	DW_CFA_offset_extended = 0x05,
	DW_CFA_restore_extended = 0x06,
	DW_CFA_undefined = 0x07,
	DW_CFA_same_value = 0x08,
	DW_CFA_register = 0x09,
	DW_CFA_remember_state = 0x0a,
	DW_CFA_restore_state = 0x0b,
	DW_CFA_def_cfa = 0x0c,
	DW_CFA_def_cfa_register = 0x0d,
	DW_CFA_def_cfa_offset = 0x0e,
	DW_CFA_def_cfa_expression = 0x0f,
	DW_CFA_expression = 0x10,
	DW_CFA_offset_extended_sf = 0x11,
	DW_CFA_def_cfa_sf = 0x12,
	DW_CFA_def_cfa_offset_sf = 0x13,
	DW_CFA_val_offset = 0x14,
	DW_CFA_val_offset_sf = 0x15,
	DW_CFA_val_expression = 0x16,
	DW_CFA_GNU_args_size = 0x2e,
	DW_CFA_GNU_negative_offset_extended = 0x2f,
	DW_CFA_advance_loc = 0x40,
	DW_CFA_offset = 0x80,
	DW_CFA_restore = 0xc0,
};

/* Pointer encodings (DW_EH_PE_*): format in the low nibble, how it applies
 * in bits 4-6, indirection in bit 7. */
enum {
	DW_EH_PE_absptr = 0x00,
	DW_EH_PE_uleb128 = 0x01,
	DW_EH_PE_udata2 = 0x02,
	DW_EH_PE_udata4 = 0x03,
	DW_EH_PE_udata8 = 0x04,
	DW_EH_PE_sleb128 = 0x09,
	DW_EH_PE_sdata2 = 0x0a,
	DW_EH_PE_sdata4 = 0x0b,
	DW_EH_PE_sdata8 = 0x0c,
	DW_EH_PE_pcrel = 0x10,
	DW_EH_PE_datarel = 0x30,
	DW_EH_PE_indirect = 0x80,
	DW_EH_PE_omit = 0xff,
};

/* ---------------------------------------------------------------------- */
/* Reading the tables. Every read is bounded by the end of the record it is
 * in; a read past it marks the reader bad, and a bad reader's rule is
 * PROF_UNWIND_COMPLEX. */

typedef struct {
	const uint8_t *p;
	const uint8_t *end;
	bool bad;
} uw_reader_t;

static uint64_t
uw_read_fixed(uw_reader_t *r, size_t n) {
	if (r->bad || (size_t)(r->end - r->p) < n) {
		r->bad = true;
		return 0;
	}
	uint64_t v = 0;
	/* Little-endian: the first byte is the lowest. */
	for (size_t i = 0; i < n; i++) {
		v |= (uint64_t)r->p[i] << (8 * i);
	}
	r->p += n;
	return v;
}

/* A LEB128 number; sign: sign-extended from its last byte's bit 6. */
static uint64_t
uw_read_leb(uw_reader_t *r, bool sign) {
	uint64_t v = 0;
	for (unsigned shift = 0;; shift += 7) {
		if (r->bad || r->p >= r->end || shift > 63) {
			r->bad = true;
			return 0;
		}
		uint8_t b = *r->p++;
		v |= (uint64_t)(b & 0x7f) << shift;
		if ((b & 0x80) == 0) {
			if (sign && shift + 7 < 64 && (b & 0x40) != 0) {
				v |= ~(uint64_t)0 << (shift + 7);
			}
			return v;
		}
	}
}

static uint64_t
uw_read_uleb(uw_reader_t *r) {
	return uw_read_leb(r, false);
}

static int64_t
uw_read_sleb(uw_reader_t *r) {
	return (int64_t)uw_read_leb(r, true);
}

/* A pointer in encoding enc. datarel: the base of DW_EH_PE_datarel (0:
 * none). value_only: the format alone (an FDE's address range). */
static uintptr_t
uw_read_encoded(uw_reader_t *r, uint8_t enc, uintptr_t datarel, bool value_only) {
	uintptr_t here = (uintptr_t)r->p;
	uint64_t v;
	switch (enc & 0x0f) {
	case DW_EH_PE_absptr:
	case DW_EH_PE_udata8:
	case DW_EH_PE_sdata8:
		v = uw_read_fixed(r, 8);
		break;
	case DW_EH_PE_uleb128:
		v = uw_read_uleb(r);
		break;
	case DW_EH_PE_udata2:
		v = uw_read_fixed(r, 2);
		break;
	case DW_EH_PE_udata4:
		v = uw_read_fixed(r, 4);
		break;
	case DW_EH_PE_sleb128:
		v = (uint64_t)uw_read_sleb(r);
		break;
	case DW_EH_PE_sdata2:
		v = (uint64_t)(int64_t)(int16_t)uw_read_fixed(r, 2);
		break;
	case DW_EH_PE_sdata4:
		v = (uint64_t)(int64_t)(int32_t)uw_read_fixed(r, 4);
		break;
	default:
		r->bad = true;
		return 0;
	}
	if (value_only || r->bad) {
		return (uintptr_t)v;
	}
	switch (enc & 0x70) {
	case 0:
		break;
	case DW_EH_PE_pcrel:
		v += here;
		break;
	case DW_EH_PE_datarel:
		if (datarel == 0) {
			r->bad = true;
			return 0;
		}
		v += datarel;
		break;
	default:
		r->bad = true;
		return 0;
	}
	if ((enc & DW_EH_PE_indirect) != 0) {
		uintptr_t target;
		memcpy(&target, (const void *)(uintptr_t)v, sizeof(target));
		v = target;
	}
	return (uintptr_t)v;
}

/* ---------------------------------------------------------------------- */
/* Finding the FDE: the object holding the address and its .eh_frame_hdr. */

typedef struct {
	uintptr_t addr;
	const uint8_t *hdr;
	size_t hdr_size;
	bool found;
} uw_object_find_t;

static int
uw_object_find_cb(struct dl_phdr_info *info, size_t size, void *arg) {
	(void)size;
	uw_object_find_t *f = arg;
	bool inside = false;
	const ElfW(Phdr) *eh = NULL;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t start = info->dlpi_addr + ph->p_vaddr;
		if (ph->p_type == PT_LOAD && f->addr >= start && f->addr - start < ph->p_memsz) {
			inside = true;
		} else if (ph->p_type == PT_GNU_EH_FRAME) {
			eh = ph;
		}
	}
	if (!inside) {
		return 0;
	}
	f->found = true;
	if (eh != NULL) {
		f->hdr = (const uint8_t *)(info->dlpi_addr + eh->p_vaddr);
		f->hdr_size = eh->p_memsz;
	}
	return 1;
}

/* The FDE whose table entry is the last one at or before addr, from the
 * sorted table of .eh_frame_hdr; NULL when there is none or the table is
 * not the usual kind (datarel sdata4 pairs). */
static const uint8_t *
uw_hdr_search(const uint8_t *hdr, size_t hdr_size, uintptr_t addr) {
	uw_reader_t r = {hdr, hdr + hdr_size, false};
	uint8_t version = (uint8_t)uw_read_fixed(&r, 1);
	uint8_t ptr_enc = (uint8_t)uw_read_fixed(&r, 1);
	uint8_t count_enc = (uint8_t)uw_read_fixed(&r, 1);
	uint8_t table_enc = (uint8_t)uw_read_fixed(&r, 1);
	if (r.bad || version != 1 || ptr_enc == DW_EH_PE_omit || count_enc == DW_EH_PE_omit ||
	    table_enc != (DW_EH_PE_datarel | DW_EH_PE_sdata4)) {
		return NULL;
	}
	uw_read_encoded(&r, ptr_enc, (uintptr_t)hdr, false);
	uintptr_t count = uw_read_encoded(&r, count_enc, (uintptr_t)hdr, false);
	if (r.bad || count == 0 || (size_t)(r.end - r.p) / 8 < count) {
		return NULL;
	}
	const uint8_t *table = r.p;
	/* Entries: (initial location, FDE), each an int32 from hdr. */
	size_t lo = 0, hi = count;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		int32_t loc;
		memcpy(&loc, table + mid * 8, sizeof(loc));
		if ((uintptr_t)hdr + (intptr_t)loc <= addr) {
			lo = mid;
		} else {
			hi = mid;
		}
	}
	int32_t loc, fde;
	memcpy(&loc, table + lo * 8, sizeof(loc));
	memcpy(&fde, table + lo * 8 + 4, sizeof(fde));
	if ((uintptr_t)hdr + (intptr_t)loc > addr) {
		return NULL;
	}
	return hdr + fde;
}

/* ---------------------------------------------------------------------- */
/* The call-frame program. */

/* How a tracked register is recovered. */
typedef enum {
	UW_SAME = 0,
	UW_UNDEF,
	UW_OFFSET,
	UW_OTHER,
} uw_how_t;

/* One row of the call-frame table, for the registers the walk needs.
 * cfa_reg is a DWARF register number, or -1 for an expression. */
typedef struct {
	int cfa_reg;
	int64_t cfa_off;
	uw_how_t rbp_how;
	int64_t rbp_off;
	uw_how_t ra_how;
	int64_t ra_off;
} uw_row_t;

/* Deepest DW_CFA_remember_state nesting followed. */
#define UW_STATE_STACK 8

typedef struct {
	uint64_t code_align;
	int64_t data_align;
	uint8_t fde_enc;
	/* The CIE's augmentation starts with 'z': FDEs carry augmentation
	 * data too. */
	bool aug_z;
	/* The rows of the CIE's initial instructions (DW_CFA_restore). */
	uw_row_t initial;
	uw_row_t row;
	uw_row_t stack[UW_STATE_STACK];
	unsigned depth;
} uw_exec_t;

static void
uw_set_rule(uw_row_t *row, uint64_t reg, uw_how_t how, int64_t off) {
	if (reg == UW_REG_RBP) {
		row->rbp_how = how;
		row->rbp_off = off;
	} else if (reg == UW_REG_RA) {
		row->ra_how = how;
		row->ra_off = off;
	}
}

static void
uw_restore_rule(uw_exec_t *x, uint64_t reg) {
	if (reg == UW_REG_RBP) {
		x->row.rbp_how = x->initial.rbp_how;
		x->row.rbp_off = x->initial.rbp_off;
	} else if (reg == UW_REG_RA) {
		x->row.ra_how = x->initial.ra_how;
		x->row.ra_off = x->initial.ra_off;
	}
}

/* Skips a DWARF expression block (its length, then its bytes). */
static void
uw_skip_block(uw_reader_t *r) {
	uint64_t len = uw_read_uleb(r);
	if (r->bad || (uint64_t)(r->end - r->p) < len) {
		r->bad = true;
		return;
	}
	r->p += len;
}

/*
 * Runs the instructions in r from location *loc until the row for addr is
 * complete (the next advance would pass addr). An instruction this reader
 * does not know marks r bad.
 */
static void
uw_exec(uw_exec_t *x, uw_reader_t *r, uintptr_t *loc, uintptr_t addr) {
	while (!r->bad && r->p < r->end) {
		uint8_t op = *r->p++;
		uint8_t low = op & 0x3f;
		uint64_t reg;
		uintptr_t delta;
		switch (op & 0xc0) {
		case DW_CFA_advance_loc:
			delta = low * x->code_align;
			if (*loc + delta > addr) {
				return;
			}
			*loc += delta;
			continue;
		case DW_CFA_offset:
			uw_set_rule(&x->row, low, UW_OFFSET,
			            (int64_t)uw_read_uleb(r) * x->data_align);
			continue;
		case DW_CFA_restore:
			uw_restore_rule(x, low);
			continue;
		default:
			break;
		}
		switch (op) {
		case DW_CFA_nop:
			break;
		case DW_CFA_set_loc: {
			uintptr_t to = uw_read_encoded(r, x->fde_enc, 0, false);
			if (to > addr) {
				return;
			}
			*loc = to;
			break;
		}
		case DW_CFA_advance_loc1:
		case DW_CFA_advance_loc2:
		case DW_CFA_advance_loc4:
			delta = uw_read_fixed(r, op == DW_CFA_advance_loc1   ? 1
			                         : op == DW_CFA_advance_loc2 ? 2
			                                                     : 4) *
			        x->code_align;
			if (*loc + delta > addr) {
				return;
			}
			*loc += delta;
			break;
		case DW_CFA_offset_extended:
			reg = uw_read_uleb(r);
			uw_set_rule(&x->row, reg, UW_OFFSET,
			            (int64_t)uw_read_uleb(r) * x->data_align);
			break;
		case DW_CFA_offset_extended_sf:
			reg = uw_read_uleb(r);
			uw_set_rule(&x->row, reg, UW_OFFSET, uw_read_sleb(r) * x->data_align);
			break;
		case DW_CFA_GNU_negative_offset_extended:
			reg = uw_read_uleb(r);
			uw_set_rule(&x->row, reg, UW_OFFSET,
			            -(int64_t)uw_read_uleb(r) * x->data_align);
			break;
		case DW_CFA_restore_extended:
			uw_restore_rule(x, uw_read_uleb(r));
			break;
		case DW_CFA_undefined:
			uw_set_rule(&x->row, uw_read_uleb(r), UW_UNDEF, 0);
			break;
		case DW_CFA_same_value:
			uw_set_rule(&x->row, uw_read_uleb(r), UW_SAME, 0);
			break;
		case DW_CFA_register:
			reg = uw_read_uleb(r);
			uw_read_uleb(r);
			uw_set_rule(&x->row, reg, UW_OTHER, 0);
			break;
		case DW_CFA_val_offset:
		case DW_CFA_val_offset_sf:
			reg = uw_read_uleb(r);
			if (op == DW_CFA_val_offset) {
				uw_read_uleb(r);
			} else {
				uw_read_sleb(r);
			}
			uw_set_rule(&x->row, reg, UW_OTHER, 0);
			break;
		case DW_CFA_expression:
		case DW_CFA_val_expression:
			reg = uw_read_uleb(r);
			uw_skip_block(r);
			uw_set_rule(&x->row, reg, UW_OTHER, 0);
			break;
		case DW_CFA_remember_state:
			if (x->depth == UW_STATE_STACK) {
				r->bad = true;
				return;
			}
			/* The whole row, CFA included, as GCC's unwinder does
			 * and GCC's epilogue notes expect. */
			x->stack[x->depth++] = x->row;
			break;
		case DW_CFA_restore_state:
			if (x->depth == 0) {
				r->bad = true;
				return;
			}
			x->row = x->stack[--x->depth];
			break;
		case DW_CFA_def_cfa:
			x->row.cfa_reg = (int)uw_read_uleb(r);
			x->row.cfa_off = (int64_t)uw_read_uleb(r);
			break;
		case DW_CFA_def_cfa_sf:
			x->row.cfa_reg = (int)uw_read_uleb(r);
			x->row.cfa_off = uw_read_sleb(r) * x->data_align;
			break;
		case DW_CFA_def_cfa_register:
			x->row.cfa_reg = (int)uw_read_uleb(r);
			break;
		case DW_CFA_def_cfa_offset:
			x->row.cfa_off = (int64_t)uw_read_uleb(r);
			break;
		case DW_CFA_def_cfa_offset_sf:
			x->row.cfa_off = uw_read_sleb(r) * x->data_align;
			break;
		case DW_CFA_def_cfa_expression:
			uw_skip_block(r);
			x->row.cfa_reg = -1;
			break;
		case DW_CFA_GNU_args_size:
			uw_read_uleb(r);
			break;
		default:
			r->bad = true;
			return;
		}
	}
}

/* A row as a rule. */
static prof_unwind_rule_t
uw_row_rule(const uw_row_t *row) {
	prof_unwind_rule_t rule = {PROF_UNWIND_COMPLEX, 0, 0};
	if (row->ra_how == UW_UNDEF) {
		rule.kind = PROF_UNWIND_END;
		return rule;
	}
	if (row->ra_how != UW_OFFSET || row->ra_off != -8 ||
	    (row->cfa_reg != UW_REG_RSP && row->cfa_reg != UW_REG_RBP) || row->cfa_off <= 0 ||
	    row->cfa_off > INT32_MAX) {
		return rule;
	}
	if (row->rbp_how == UW_OFFSET) {
		if (row->rbp_off == 0 || row->rbp_off < INT32_MIN || row->rbp_off > INT32_MAX) {
			return rule;
		}
		rule.rbp_off = (int32_t)row->rbp_off;
	} else if (row->rbp_how != UW_SAME) {
		return rule;
	}
	rule.kind = row->cfa_reg == UW_REG_RSP ? PROF_UNWIND_RSP : PROF_UNWIND_RBP;
	rule.cfa_off = (int32_t)row->cfa_off;
	return rule;
}

/* Reads the CIE at cie into x and r (its initial instructions); false when
 * it is not one this reader follows. */
static bool
uw_cie_read(const uint8_t *cie, uw_exec_t *x, uw_reader_t *insns) {
	uw_reader_t r = {cie, cie + 4, false};
	uint64_t len = uw_read_fixed(&r, 4);
	if (r.bad || len == 0 || len == 0xffffffff) {
		return false;
	}
	r.end = cie + 4 + len;
	uint64_t id = uw_read_fixed(&r, 4);
	uint8_t version = (uint8_t)uw_read_fixed(&r, 1);
	if (r.bad || id != 0 || (version != 1 && version != 3)) {
		return false;
	}
	const char *aug = (const char *)r.p;
	size_t auglen = strnlen(aug, (size_t)(r.end - r.p));
	if (auglen == (size_t)(r.end - r.p)) {
		return false;
	}
	r.p += auglen + 1;
	x->code_align = uw_read_uleb(&r);
	x->data_align = uw_read_sleb(&r);
	uint64_t ra = version == 1 ? uw_read_fixed(&r, 1) : uw_read_uleb(&r);
	if (r.bad || ra != UW_REG_RA || x->code_align == 0) {
		return false;
	}
	x->fde_enc = DW_EH_PE_absptr;
	x->aug_z = aug[0] == 'z';
	if (x->aug_z) {
		uint64_t n = uw_read_uleb(&r);
		if (r.bad || (uint64_t)(r.end - r.p) < n) {
			return false;
		}
		const uint8_t *data_end = r.p + n;
		for (const char *c = aug + 1; *c != '\0'; c++) {
			if (*c == 'R') {
				x->fde_enc = (uint8_t)uw_read_fixed(&r, 1);
			} else if (*c == 'P') {
				uint8_t penc = (uint8_t)uw_read_fixed(&r, 1);
				/* The personality routine is not needed: its
				 * size is skipped, not its target read. */
				uw_read_encoded(&r, penc, 0, true);
			} else if (*c == 'L') {
				uw_read_fixed(&r, 1);
			} else {
				/* 'S' (a signal frame) and anything newer. */
				return false;
			}
		}
		if (r.bad || r.p > data_end) {
			return false;
		}
		r.p = data_end;
	} else if (aug[0] != '\0') {
		return false;
	}
	*insns = r;
	return true;
}

prof_unwind_rule_t
prof_unwind_rule_decode(uintptr_t addr) {
	prof_unwind_rule_t complex = {PROF_UNWIND_COMPLEX, 0, 0};
	uw_object_find_t f = {addr, NULL, 0, false};
	dl_iterate_phdr(uw_object_find_cb, &f);
	if (f.hdr == NULL) {
		return complex;
	}
	const uint8_t *fde = uw_hdr_search(f.hdr, f.hdr_size, addr);
	if (fde == NULL) {
		return complex;
	}
	uw_reader_t r = {fde, fde + 8, false};
	uint64_t len = uw_read_fixed(&r, 4);
	if (r.bad || len == 0 || len == 0xffffffff || len < 4) {
		return complex;
	}
	r.end = fde + 4 + len;
	const uint8_t *cie_field = r.p;
	uint64_t cie_off = uw_read_fixed(&r, 4);
	if (cie_off == 0) {
		/* A CIE, not an FDE: the table is not what it should be. */
		return complex;
	}
	uw_exec_t x;
	memset(&x, 0, sizeof(x));
	uw_reader_t cie_insns;
	if (!uw_cie_read(cie_field - cie_off, &x, &cie_insns)) {
		return complex;
	}
	uintptr_t start = uw_read_encoded(&r, x.fde_enc, 0, false);
	uintptr_t range = uw_read_encoded(&r, x.fde_enc, 0, true);
	if (r.bad || addr < start || addr - start >= range) {
		return complex;
	}
	if (x.aug_z) {
		uw_skip_block(&r);
	}
	/* Before the CIE's instructions nothing is defined: a CFA from no
	 * register is not one this reader follows. */
	x.row.cfa_reg = -1;
	uintptr_t loc = start;
	uw_exec(&x, &cie_insns, &loc, addr);
	if (cie_insns.bad) {
		return complex;
	}
	x.initial = x.row;
	uw_exec(&x, &r, &loc, addr);
	if (r.bad) {
		return complex;
	}
	return uw_row_rule(&x.row);
}

/* ---------------------------------------------------------------------- */
/* The table of rules by address. */

typedef struct {
	/* The address looked up (return address minus one); 0: empty. */
	uintptr_t addr;
	int32_t cfa_off;
	int16_t rbp_off;
	uint8_t kind;
	uint8_t pad;
} uw_entry_t;

/* 2^UW_LG_BUCKETS buckets of UW_WAYS entries (one cache line each), 64 KiB
 * in all. Addresses from one object differ in few bits; buckets of several
 * ways keep two hot addresses that hash alike from evicting each other. */
#define UW_LG_BUCKETS 10
#define UW_WAYS       4
#define UW_TABLE_SIZE (sizeof(uw_entry_t) * UW_WAYS << UW_LG_BUCKETS)

/* Protects the table, the unload count it was filled under and the
 * counters. A leaf lock: nothing is called while it is held. */
static mutex_t prof_unwind_lock = MUTEX_INITIALIZER;
static uw_entry_t *uw_table;
static uint64_t uw_table_subs;
static prof_unwind_stats_t uw_stats;

bool
prof_unwind_boot(void) {
	if (uw_table != NULL) {
		return true;
	}
	void *p =
	    mmap(NULL, UW_TABLE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		return false;
	}
	uw_table = p;
	return true;
}

static uw_entry_t *
uw_bucket(uintptr_t addr) {
	uint64_t h = (uint64_t)addr * 0x9e3779b97f4a7c15ULL;
	return &uw_table[(h >> (64 - UW_LG_BUCKETS)) * UW_WAYS];
}

/* The entry of addr, or NULL. */
static const uw_entry_t *
uw_table_find(uintptr_t addr) {
	const uw_entry_t *b = uw_bucket(addr);
	for (unsigned i = 0; i < UW_WAYS; i++) {
		if (b[i].addr == addr) {
			return &b[i];
		}
	}
	return NULL;
}

/* Puts e in its bucket: in a free way, else in place of the way the
 * address's own bits pick. */
static void
uw_table_put(const uw_entry_t *e) {
	uw_entry_t *b = uw_bucket(e->addr);
	unsigned way = (unsigned)(e->addr ^ (e->addr >> 7)) % UW_WAYS;
	for (unsigned i = 0; i < UW_WAYS; i++) {
		if (b[i].addr == 0 || b[i].addr == e->addr) {
			way = i;
			break;
		}
	}
	b[way] = *e;
}

static int
uw_subs_cb(struct dl_phdr_info *info, size_t size, void *arg) {
	uint64_t *subs = arg;
	if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof(info->dlpi_subs)) {
		*subs = info->dlpi_subs;
	}
	return 1;
}

prof_unwind_stats_t
prof_unwind_stats_get(void) {
	mutex_lock(&prof_unwind_lock);
	prof_unwind_stats_t s = uw_stats;
	mutex_unlock(&prof_unwind_lock);
	return s;
}

/* ---------------------------------------------------------------------- */
/* The walk. */

#if defined(__x86_64__)
/* The walk reads the stack above its own frame, which the sanitizers do not
 * know to be anybody's. */
__attribute__((no_sanitize_address)) NOINLINE int
prof_unwind_backtrace(uintptr_t *pcs, unsigned max) {
	uintptr_t pc, sp, bp;
	/* This frame's state at a known address: the rule for that address
	 * leads to the caller. */
	__asm__ volatile("lea 0(%%rip), %0\n\tmov %%rsp, %1\n\tmov %%rbp, %2"
	                 : "=r"(pc), "=r"(sp), "=r"(bp));
	if (uw_table == NULL) {
		return PROF_UNWIND_FALLBACK;
	}
	uint64_t subs = UINT64_MAX;
	dl_iterate_phdr(uw_subs_cb, &subs);
	if (subs == UINT64_MAX) {
		return PROF_UNWIND_FALLBACK;
	}
	mutex_lock(&prof_unwind_lock);
	if (subs != uw_table_subs) {
		/* An object was unloaded: its addresses may be reused. */
		memset(uw_table, 0, UW_TABLE_SIZE);
		uw_table_subs = subs;
		uw_stats.flushes++;
	}
	unsigned n = 0;
	uintptr_t addr = pc;
	uint64_t hits = 0;
	int ret = PROF_UNWIND_FALLBACK;
	while (n < max) {
		const uw_entry_t *e = uw_table_find(addr);
		uw_entry_t rule;
		if (e != NULL) {
			rule = *e;
			hits++;
		} else {
			/* Decode outside the lock (dl_iterate_phdr). */
			mutex_unlock(&prof_unwind_lock);
			prof_unwind_rule_t d = prof_unwind_rule_decode(addr);
			rule.addr = addr;
			rule.kind = (uint8_t)d.kind;
			rule.cfa_off = d.cfa_off;
			rule.rbp_off = (int16_t)d.rbp_off;
			if (d.rbp_off != rule.rbp_off) {
				rule.kind = PROF_UNWIND_COMPLEX;
			}
			mutex_lock(&prof_unwind_lock);
			if (uw_table_subs == subs) {
				uw_table_put(&rule);
			}
			uw_stats.decoded++;
		}
		if (rule.kind == PROF_UNWIND_END) {
			ret = (int)n;
			break;
		}
		if (rule.kind != PROF_UNWIND_RSP && rule.kind != PROF_UNWIND_RBP) {
			break;
		}
		uintptr_t cfa = (rule.kind == PROF_UNWIND_RSP ? sp : bp) + (uintptr_t)rule.cfa_off;
		/* Frames go up the stack; anything else (another stack, a
		 * wrong rbp) is left to libgcc. */
		if (cfa <= sp || cfa - sp > ((uintptr_t)1 << 28)) {
			break;
		}
		if (rule.rbp_off != 0) {
			bp = *(const uintptr_t *)(cfa + (intptr_t)rule.rbp_off);
		}
		pc = *(const uintptr_t *)(cfa - 8);
		sp = cfa;
		if (pc == 0) {
			ret = (int)n;
			break;
		}
		pcs[n++] = pc;
		addr = pc - 1;
	}
	if (n == max) {
		ret = (int)n;
	}
	uw_stats.hits += hits;
	if (ret == PROF_UNWIND_FALLBACK) {
		uw_stats.fallbacks++;
	}
	mutex_unlock(&prof_unwind_lock);
	return ret;
}
#else
NOINLINE int
prof_unwind_backtrace(uintptr_t *pcs, unsigned max) {
	(void)pcs, (void)max;
	return PROF_UNWIND_FALLBACK;
}
#endif

void
prof_unwind_prefork(void) {
	mutex_prefork(&prof_unwind_lock);
}

void
prof_unwind_postfork_parent(void) {
	mutex_postfork_parent(&prof_unwind_lock);
}

void
prof_unwind_postfork_child(void) {
	mutex_postfork_child(&prof_unwind_lock);
}
