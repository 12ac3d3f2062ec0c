/* expr.h - nf_tables expressions added to a rule (libnftnl): e_* puts one expression, m_* a
 * match (load into register 1, then compare). Register 1 is the working register. */
#ifndef AGENT_EXPR_H
#define AGENT_EXPR_H

#include <libnftnl/rule.h>
#include <stdint.h>

void e_add(struct nftnl_rule *r, struct nftnl_expr *e);
void e_meta(struct nftnl_rule *r, uint32_t key);
void e_cmp(struct nftnl_rule *r, uint32_t op, const void *data, uint32_t len);
void e_payload_to(struct nftnl_rule *r, uint32_t base, uint32_t off, uint32_t len, uint32_t dreg);
void e_payload(struct nftnl_rule *r, uint32_t base, uint32_t off, uint32_t len);
void e_lookup(struct nftnl_rule *r, const char *set, uint32_t set_id);
void e_lookup_not(struct nftnl_rule *r, const char *set, uint32_t set_id);
void e_dynset_update(struct nftnl_rule *r, const char *set, uint32_t set_id);
void e_counter(struct nftnl_rule *r);
void e_verdict(struct nftnl_rule *r, int verdict, const char *chain);
void e_reject(struct nftnl_rule *r, uint32_t type, uint8_t code);
void e_imm(struct nftnl_rule *r, const void *data, uint32_t len);
void e_redirect(struct nftnl_rule *r, uint16_t port);
void e_tproxy(struct nftnl_rule *r, uint32_t family, uint32_t mark, uint16_t port);
void m_ifname(struct nftnl_rule *r, uint32_t key, const char name[16]);
void m_ifname_not(struct nftnl_rule *r, uint32_t key, const char name[16]);
void m_u8(struct nftnl_rule *r, uint32_t meta_key, uint8_t v);
void m_dport(struct nftnl_rule *r, uint32_t op, uint16_t port);
void e_and(struct nftnl_rule *r, uint32_t mask);
/* register 1 &= mask, len bytes (at most 16) */
void e_and_n(struct nftnl_rule *r, const void *mask, uint32_t len);
void m_ct_established(struct nftnl_rule *r);

#endif
