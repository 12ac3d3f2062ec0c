/* expr.c - see expr.h. */
#include "expr.h"

#include <arpa/inet.h>
#include <libnftnl/expr.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>
#include <netinet/in.h>

void e_add(struct nftnl_rule *r, struct nftnl_expr *e)
{
	nftnl_rule_add_expr(r, e);
}

void e_meta(struct nftnl_rule *r, uint32_t key)
{
	struct nftnl_expr *e = nftnl_expr_alloc("meta");

	nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, NFT_REG_1);
	e_add(r, e);
}

void e_cmp(struct nftnl_rule *r, uint32_t op, const void *data, uint32_t len)
{
	struct nftnl_expr *e = nftnl_expr_alloc("cmp");

	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
	nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
	e_add(r, e);
}

void e_payload_to(struct nftnl_rule *r, uint32_t base, uint32_t off, uint32_t len, uint32_t dreg)
{
	struct nftnl_expr *e = nftnl_expr_alloc("payload");

	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, off);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, dreg);
	e_add(r, e);
}

void e_payload(struct nftnl_rule *r, uint32_t base, uint32_t off, uint32_t len)
{
	e_payload_to(r, base, off, len, NFT_REG_1);
}

void e_lookup(struct nftnl_rule *r, const char *set, uint32_t set_id)
{
	struct nftnl_expr *e = nftnl_expr_alloc("lookup");

	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
	nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set);
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, set_id);
	e_add(r, e);
}

/* register 1's key (len bytes from register 1 on) not in the set */
void e_lookup_not(struct nftnl_rule *r, const char *set, uint32_t set_id)
{
	struct nftnl_expr *e = nftnl_expr_alloc("lookup");

	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
	nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set);
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, set_id);
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
	e_add(r, e);
}

/* update @set { <register 1's key> counter }: the element made (or its timeout renewed), with a
 * counter of its own (the set needs flags dynamic,timeout) */
void e_dynset_update(struct nftnl_rule *r, const char *set, uint32_t set_id)
{
	struct nftnl_expr *e = nftnl_expr_alloc("dynset");

	nftnl_expr_set_u32(e, NFTNL_EXPR_DYNSET_SREG_KEY, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_DYNSET_OP, NFT_DYNSET_OP_UPDATE);
	nftnl_expr_set_str(e, NFTNL_EXPR_DYNSET_SET_NAME, set);
	nftnl_expr_set_u32(e, NFTNL_EXPR_DYNSET_SET_ID, set_id);
	nftnl_expr_set(e, NFTNL_EXPR_DYNSET_EXPR, nftnl_expr_alloc("counter"), 0);
	e_add(r, e);
}

void e_counter(struct nftnl_rule *r)
{
	e_add(r, nftnl_expr_alloc("counter"));
}

void e_verdict(struct nftnl_rule *r, int verdict, const char *chain)
{
	struct nftnl_expr *e = nftnl_expr_alloc("immediate");

	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, (uint32_t)verdict);
	if (chain)
		nftnl_expr_set_str(e, NFTNL_EXPR_IMM_CHAIN, chain);
	e_add(r, e);
}

void e_reject(struct nftnl_rule *r, uint32_t type, uint8_t code)
{
	struct nftnl_expr *e = nftnl_expr_alloc("reject");

	nftnl_expr_set_u32(e, NFTNL_EXPR_REJECT_TYPE, type);
	nftnl_expr_set_u8(e, NFTNL_EXPR_REJECT_CODE, code);
	e_add(r, e);
}

/* Load len bytes of data into register 1. */
void e_imm(struct nftnl_rule *r, const void *data, uint32_t len)
{
	struct nftnl_expr *imm = nftnl_expr_alloc("immediate");

	nftnl_expr_set_u32(imm, NFTNL_EXPR_IMM_DREG, NFT_REG_1);
	nftnl_expr_set(imm, NFTNL_EXPR_IMM_DATA, data, len);
	e_add(r, imm);
}

void e_redirect(struct nftnl_rule *r, uint16_t port)
{
	struct nftnl_expr *e = nftnl_expr_alloc("redir");
	uint16_t be = htons(port);

	e_imm(r, &be, sizeof(be));
	nftnl_expr_set_u32(e, NFTNL_EXPR_REDIR_REG_PROTO_MIN, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_REDIR_FLAGS, NF_NAT_RANGE_PROTO_SPECIFIED);
	e_add(r, e);
}

/* meta mark set MARK; tproxy ip|ip6 to :PORT; accept */
void e_tproxy(struct nftnl_rule *r, uint32_t family, uint32_t mark, uint16_t port)
{
	struct nftnl_expr *set = nftnl_expr_alloc("meta"), *tp = nftnl_expr_alloc("tproxy");
	uint16_t be = htons(port);

	/* tproxy first: without a transparent socket on the port it ends the rule (NFT_BREAK), so
	 * only a packet handed to the forwarder is marked, and only a marked one is routed to the
	 * local stack and accepted by lan_in; the rest goes on to the forward chain: refused */
	e_imm(r, &be, sizeof(be));
	nftnl_expr_set_u32(tp, NFTNL_EXPR_TPROXY_FAMILY, family);
	nftnl_expr_set_u32(tp, NFTNL_EXPR_TPROXY_REG_PORT, NFT_REG_1);
	e_add(r, tp);
	e_imm(r, &mark, sizeof(mark));
	nftnl_expr_set_u32(set, NFTNL_EXPR_META_KEY, NFT_META_MARK);
	nftnl_expr_set_u32(set, NFTNL_EXPR_META_SREG, NFT_REG_1);
	e_add(r, set);
	e_verdict(r, NF_ACCEPT, NULL);
}

void m_ifname(struct nftnl_rule *r, uint32_t key, const char name[16])
{
	e_meta(r, key);
	e_cmp(r, NFT_CMP_EQ, name, 16);
}

void m_ifname_not(struct nftnl_rule *r, uint32_t key, const char name[16])
{
	e_meta(r, key);
	e_cmp(r, NFT_CMP_NEQ, name, 16);
}

void m_u8(struct nftnl_rule *r, uint32_t meta_key, uint8_t v)
{
	e_meta(r, meta_key);
	e_cmp(r, NFT_CMP_EQ, &v, 1);
}

void m_dport(struct nftnl_rule *r, uint32_t op, uint16_t port)
{
	uint16_t be = htons(port);

	e_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2);
	e_cmp(r, op, &be, 2);
}

/* register 1 &= mask (4 bytes, as given: network order where the data is) */
void e_and_n(struct nftnl_rule *r, const void *mask, uint32_t len)
{
	struct nftnl_expr *bw = nftnl_expr_alloc("bitwise");
	static const uint8_t zero[16];

	nftnl_expr_set_u32(bw, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
	nftnl_expr_set_u32(bw, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
	nftnl_expr_set_u32(bw, NFTNL_EXPR_BITWISE_LEN, len);
	nftnl_expr_set(bw, NFTNL_EXPR_BITWISE_MASK, mask, len);
	nftnl_expr_set(bw, NFTNL_EXPR_BITWISE_XOR, zero, len);
	e_add(r, bw);
}

void e_and(struct nftnl_rule *r, uint32_t mask)
{
	e_and_n(r, &mask, 4);
}

void m_ct_established(struct nftnl_rule *r)
{
	struct nftnl_expr *ct = nftnl_expr_alloc("ct");
	uint32_t zero = 0;

	nftnl_expr_set_u32(ct, NFTNL_EXPR_CT_KEY, NFT_CT_STATE);
	nftnl_expr_set_u32(ct, NFTNL_EXPR_CT_DREG, NFT_REG_1);
	e_add(r, ct);
	e_and(r, NF_CT_STATE_BIT(IP_CT_ESTABLISHED) | NF_CT_STATE_BIT(IP_CT_RELATED));
	e_cmp(r, NFT_CMP_NEQ, &zero, 4);
}
