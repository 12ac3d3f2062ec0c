/* DHCP lease files (dnsmasq and ISC dhcpd): names of the LAN's devices, cleaned; the last lease
 * of an address wins; nonsense is skipped, never fatal. */
#include "testlib.h"

#include "leases.h"

#include <string.h>

static void test_dnsmasq(void **state)
{
	static const char text[] = "1796292000 02:00:5E:AA:BB:0C 192.168.2.10 laptop-anna 01:02:00:5e:aa:bb:0c\n"
				   "0 02:00:5e:aa:bb:0d 192.168.2.11 * *\n"
				   "1796292000 02:00:5e:aa:bb:0e 192.168.2.12 tv<script>alert(1)</script> *\n"
				   "duid 00:01:00:01:2c:cc:8c:4a:02:00:5e:aa:bb:0c\n"
				   "1796292000 1234567 fd00:2:0::10 laptop-anna 00:01:00:01\n"
				   "not a lease at all\n"
				   "1796292000 02:00:5e:aa:bb:0f 192.168.2.300 bad-address *\n"
				   "1796299999 02:00:5e:aa:bb:10 192.168.2.10 laptop-new *"; /* no final newline */
	struct leases ls;
	const struct lease *l;

	(void)state;
	assert_int_equal(leases_parse(text, strlen(text), &ls), 0);
	assert_int_equal(ls.n, 4);
	l = leases_find(&ls, "192.168.2.10");
	assert_non_null(l);
	assert_string_equal(l->hostname, "laptop-new"); /* the later line wins */
	assert_string_equal(l->mac, "02:00:5e:aa:bb:10");
	assert_int_equal(l->expires, 1796299999);
	l = leases_find(&ls, "192.168.2.11");
	assert_non_null(l);
	assert_string_equal(l->hostname, ""); /* '*': no name */
	assert_int_equal(l->expires, 0);
	assert_string_equal(leases_find(&ls, "192.168.2.12")->hostname, "tvscriptalert1script");
	l = leases_find(&ls, "fd00:2::10"); /* any spelling finds it */
	assert_non_null(l);
	assert_string_equal(l->mac, ""); /* DHCPv6: an IAID, not a MAC */
	assert_null(leases_find(&ls, "192.168.2.99"));
	assert_null(leases_find(&ls, "laptop"));
	assert_string_equal(leases_find_mac(&ls, "02-00-5E-AA-BB-0E")->ip, "192.168.2.12");
	assert_null(leases_find_mac(&ls, "02:00:5e:aa:bb:99"));
	leases_free(&ls);
}

static void test_isc(void **state)
{
	static const char text[] = "# The format of this file is documented in the dhcpd.leases(5) manual page.\n"
				   "authoring-byte-order little-endian;\n"
				   "lease 192.168.2.10 {\n"
				   "  starts 3 2026/12/02 10:00:00;\n"
				   "  ends 3 2026/12/02 22:00:00;\n"
				   "  binding state active;\n"
				   "  hardware ethernet 02:00:5e:aa:bb:0c;\n"
				   "  uid \"\\001\\002\\000^\\252\\273\\014\";\n"
				   "  set vendor-class-identifier = \"android-dhcp-13\";\n"
				   "  client-hostname \"Pixel 8 {a;b}\";\n"
				   "}\n"
				   "lease 192.168.2.11 {\n"
				   "  ends never;\n"
				   "  binding state active;\n"
				   "  hardware ethernet 02:00:5e:aa:bb:0d;\n"
				   "}\n"
				   "lease 192.168.2.11 {\n"
				   "  ends epoch 1796292000; # a comment\n"
				   "  binding state free;\n"
				   "}\n"
				   "lease nonsense {\n"
				   "  binding state active;\n"
				   "}\n"
				   "lease 192.168.2.12 {\n"
				   "  binding state active;\n"
				   "  hardware ethernet 02:00:5e:aa:bb:0e;\n"
				   "  client-hostname \"unterminated";
	struct leases ls;
	const struct lease *l;

	(void)state;
	assert_int_equal(leases_parse(text, strlen(text), &ls), 0);
	l = leases_find(&ls, "192.168.2.10");
	assert_non_null(l);
	assert_string_equal(l->hostname, "Pixel8ab"); /* the quoted braces are the name's, cleaned */
	assert_string_equal(l->mac, "02:00:5e:aa:bb:0c");
	assert_int_equal(l->expires, 1796248800);      /* 2026/12/02 22:00:00 UTC */
	assert_null(leases_find(&ls, "192.168.2.11")); /* its last block frees it */
	l = leases_find(&ls, "192.168.2.12");	       /* cut short: what was read counts */
	assert_non_null(l);
	assert_string_equal(l->mac, "02:00:5e:aa:bb:0e");
	leases_free(&ls);
}

static void test_empty(void **state)
{
	struct leases ls;

	(void)state;
	assert_int_equal(leases_parse("", 0, &ls), 0);
	assert_int_equal(ls.n, 0);
	assert_null(leases_find(&ls, "192.168.2.10"));
	leases_free(&ls);
	assert_int_equal(leases_parse("lease", 5, &ls), 0);
	leases_free(&ls);
	assert_int_equal(leases_parse("lease {{{{;;;}}}", 16, &ls), 0);
	assert_int_equal(ls.n, 0);
	leases_free(&ls);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dnsmasq),
	    cmocka_unit_test(test_isc),
	    cmocka_unit_test(test_empty),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
