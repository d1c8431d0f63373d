/*
 * The Python package python/myelin, checked with Debian's python3 against
 * this build: each test runs one check of tests/python/test_package.py
 * (unittest) with PYTHONPATH at the source tree's python/ folder, so the
 * package is tested as the examples use it; `pip_install` installs it with
 * pip, offline and without build isolation (the build backend is Debian's
 * python3-setuptools), into a folder and runs a check from there.
 * A check whose Python modules are missing is recorded as skipped.
 */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* Runs test_package.py's TEST with the package found in pythonpath. */
static void run_check(const char *pythonpath, const char *test) {
  const char *src = mt_env("MYELIN_SOURCE_DIR", ".");
  char *out = NULL;
  int rc = mt_run(mt_strf("PYTHONPATH=%s %s %s/tests/python/test_package.py -v %s", pythonpath,
                          mt_env("MYELIN_PYTHON", "/usr/bin/python3"), src, test),
                  &out);
  ck_assert_msg(rc == 0 && strstr(out, "\nOK"), "%s (exit %d):\n%s", test, rc, out);
  free(out);
}

static const char *in_tree(void) { return mt_strf("%s/python", mt_env("MYELIN_SOURCE_DIR", ".")); }

#define PACKAGE_CHECK(name, modules, test)                                                                   \
  START_TEST(name) {                                                                                         \
    MT_NEED_PYTHON(modules, "the myelin Python package");                                                    \
    run_check(in_tree(), test);                                                                              \
  }                                                                                                          \
  END_TEST

PACKAGE_CHECK(read_write_every_kind, "numpy msgpack", "RoundTrip.test_python_read_write")
PACKAGE_CHECK(alignment, "numpy msgpack", "RoundTrip.test_alignment_as_the_runtime_builds")
PACKAGE_CHECK(every_kind_through_myelin, "numpy msgpack", "RoundTrip.test_every_kind_through_myelin")
PACKAGE_CHECK(schema_violation, "numpy msgpack", "RoundTrip.test_schema_violation_is_reported")
PACKAGE_CHECK(write_refuses, "numpy msgpack", "RoundTrip.test_write_refuses_what_myelin_cannot_read")
PACKAGE_CHECK(samples_spikes_stack, "numpy msgpack", "FromMyelin.test_samples_spikes_stack")
PACKAGE_CHECK(isc_map_to_nifti, "numpy msgpack nibabel", "FromMyelin.test_isc_map_to_nifti_matches_nifti_sink")
PACKAGE_CHECK(run_sets_and_errors, "numpy msgpack", "FromMyelin.test_run_errors_and_sets")

/* `pip install --no-build-isolation ./python` works offline; the installed
 * package is the one imported (not the source tree's). The source folder is
 * copied first: an in-tree build would leave build/ and *.egg-info in it. */
START_TEST(pip_install) {
  MT_NEED_PYTHON("numpy msgpack setuptools pip", "pip install ./python");
  const char *py = mt_env("MYELIN_PYTHON", "/usr/bin/python3");
  char *dir = mt_tmpdir(), *out = NULL;
  int rc = mt_run(mt_strf("cp -r %s %s/src && cd %s && %s -m pip install --no-build-isolation --no-deps "
                          "--no-index --disable-pip-version-check --target %s/site ./src",
                          in_tree(), dir, dir, py, dir),
                  &out);
  ck_assert_msg(rc == 0, "pip install failed (exit %d):\n%s", rc, out);
  free(out);
  ck_assert_int_gt(mt_file_size(mt_strf("%s/site/myelin/stream.py", dir)), 0);
  rc = mt_run(mt_strf("cd %s && PYTHONPATH=%s/site %s -c 'import myelin; print(myelin.__file__)'", dir, dir, py),
              &out);
  ck_assert_msg(rc == 0 && strstr(out, mt_strf("%s/site/myelin/__init__.py", dir)), "%s", out);
  free(out);
  run_check(mt_strf("%s/site", dir), "RoundTrip.test_every_kind_through_myelin");
}
END_TEST

int main(void) {
  Suite *s = suite_create("python_package");
  struct {
    const char *name;
    const TTest *test;
  } tests[] = {{"read_write_every_kind", read_write_every_kind},
               {"alignment", alignment},
               {"every_kind_through_myelin", every_kind_through_myelin},
               {"schema_violation", schema_violation},
               {"write_refuses", write_refuses},
               {"samples_spikes_stack", samples_spikes_stack},
               {"isc_map_to_nifti", isc_map_to_nifti},
               {"run_sets_and_errors", run_sets_and_errors},
               {"pip_install", pip_install}};
  for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
    TCase *tc = tcase_create(tests[i].name);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, tests[i].test);
    suite_add_tcase(s, tc);
  }
  return mt_run_suite(s);
}
