/*
 * A netx file that crashes libhdf5 itself (found by fuzz_netx, kept in
 * tests/fuzz/pending/netx) must not take a run down: loihi_sim reads
 * user-supplied `net:` files in a child process, so the run ends with exit 1
 * and an error naming the file. Good files still load identically.
 */
#include <stdlib.h>
#include <string.h>

#include "loihi.h"
#include "testutil.h"

START_TEST(damaged_files_are_errors) {
  const char *src = mt_env("MYELIN_SOURCE_DIR", "..");
  const char *names[] = {"crash-libhdf5-H5Lexists-damaged-local-heap.net", "oom-libhdf5-H5HL-damaged-local-heap-16GiB.net"};
  for (int i = 0; i < 2; i++) {
    char *path = mt_strf("%s/tests/fuzz/pending/netx/%s", src, names[i]);
    loihi_net n;
    char err[600];
    ck_assert_int_lt(loihi_netx_read_isolated(path, &n, err, sizeof err), 0);
    ck_assert_msg(strstr(err, names[i]) != NULL, "error does not name the file: %s", err);
    ck_assert_int_eq(n.n_layers, 0);
  }
}
END_TEST

START_TEST(good_file_same_as_direct) {
  char *path = mt_strf("%s/tests/data/netx/trained_mnist_network.net", mt_env("MYELIN_SOURCE_DIR", "."));
  loihi_net a, b;
  char err[600];
  ck_assert_msg(loihi_netx_read(path, &a, err, sizeof err) == 0, "%s", err);
  ck_assert_msg(loihi_netx_read_isolated(path, &b, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(a.n_layers, b.n_layers);
  for (int i = 0; i < a.n_layers; i++) {
    ck_assert_int_eq(a.layers[i].n_in, b.layers[i].n_in);
    ck_assert_int_eq(a.layers[i].n_out, b.layers[i].n_out);
    ck_assert_int_eq(a.layers[i].vth_mant, b.layers[i].vth_mant);
    ck_assert_int_eq(a.layers[i].i_decay, b.layers[i].i_decay);
    ck_assert_int_eq(!a.layers[i].bias, !b.layers[i].bias);
    ck_assert_int_eq(memcmp(a.layers[i].weight, b.layers[i].weight,
                            (size_t)a.layers[i].n_in * (size_t)a.layers[i].n_out * sizeof(int32_t)), 0);
  }
  loihi_net_free(&a);
  loihi_net_free(&b);
}
END_TEST

int main(void) {
  Suite *s = suite_create("netx_isolate");
  TCase *tc = tcase_create("isolate");
  tcase_add_test(tc, damaged_files_are_errors);
  tcase_add_test(tc, good_file_same_as_direct);
  suite_add_tcase(s, tc);
  return mt_run_suite(s);
}
