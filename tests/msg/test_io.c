/*
 * test_io.c — io.h: atomic files (never visible under the final name before
 * commit; abort unlinks), folders, writability checks, whole-file reads with
 * gzip (single and multi-member, truncated, size limits), zlib buffers, and
 * input paths looked up next to the pipeline file.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "myelin/io.h"
#include "testutil.h"

static int exists(const char *p) {
  struct stat st;
  return stat(p, &st) == 0;
}

static int count_entries(const char *dir) {
  DIR *d = opendir(dir);
  ck_assert_ptr_nonnull(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
  closedir(d);
  return n;
}

START_TEST(atomic_commit) {
  char *dir = mt_tmpdir();
  char *path = mt_strf("%s/out.bin", dir);
  myelin_atomic_file f;
  char err[256];
  ck_assert_int_eq(myelin_atomic_open(&f, path, err, sizeof err), 0);
  ck_assert_ptr_nonnull(f.fp);
  ck_assert_str_eq(f.path, path);
  ck_assert(strncmp(f.tmp_path, path, strlen(path)) == 0);
  ck_assert_ptr_nonnull(strstr(f.tmp_path, ".tmp-"));
  fputs("hello ", f.fp);
  fflush(f.fp);
  ck_assert(!exists(path));   /* not visible under the final name */
  ck_assert(exists(f.tmp_path));
  fputs("world", f.fp);
  char *tmp = strdup(f.tmp_path);
  ck_assert_int_eq(myelin_atomic_commit(&f, 1, err, sizeof err), 0);
  ck_assert(exists(path));
  ck_assert(!exists(tmp));
  ck_assert_ptr_null(f.fp);
  struct stat st;
  ck_assert_int_eq(stat(path, &st), 0);
  ck_assert_int_eq(st.st_mode & 0777, 0644);
  ck_assert_int_eq(st.st_size, 11);
  uint8_t *data;
  size_t len;
  ck_assert_int_eq(myelin_read_file(path, 0, &data, &len, err, sizeof err), 0);
  ck_assert_uint_eq(len, 11);
  ck_assert_str_eq((char *)data, "hello world"); /* NUL after the data */
  free(data);
  myelin_atomic_abort(&f); /* safe after commit */
  ck_assert(exists(path));
  ck_assert_int_eq(count_entries(dir), 1);
  /* overwriting keeps the old content until commit */
  ck_assert_int_eq(myelin_atomic_open(&f, path, err, sizeof err), 0);
  fputs("new", f.fp);
  fflush(f.fp);
  ck_assert_int_eq(mt_file_size(path), 11);
  ck_assert_int_eq(myelin_atomic_commit(&f, 0, err, sizeof err), 0);
  ck_assert_int_eq(mt_file_size(path), 3);
  unlink(path);
  rmdir(dir);
  free(tmp);
  free(path);
  free(dir);
}
END_TEST

START_TEST(atomic_abort) {
  char *dir = mt_tmpdir();
  char *path = mt_strf("%s/out.bin", dir);
  myelin_atomic_file f;
  char err[256];
  ck_assert_int_eq(myelin_atomic_open(&f, path, err, sizeof err), 0);
  fputs("partial", f.fp);
  char *tmp = strdup(f.tmp_path);
  myelin_atomic_abort(&f);
  ck_assert(!exists(tmp));
  ck_assert(!exists(path));
  ck_assert_int_eq(count_entries(dir), 0);
  myelin_atomic_abort(&f); /* twice is fine */
  myelin_atomic_file z;
  memset(&z, 0, sizeof z);
  myelin_atomic_abort(&z); /* zeroed is fine */
  /* a missing folder is reported with the path and the OS reason */
  char *bad = mt_strf("%s/no/such/out.bin", dir);
  ck_assert_int_ne(myelin_atomic_open(&f, bad, err, sizeof err), 0);
  ck_assert_ptr_nonnull(strstr(err, bad));
  ck_assert_ptr_nonnull(strstr(err, "No such file"));
  ck_assert_int_eq(myelin_atomic_commit(&f, 0, err, sizeof err), MYELIN_EINVAL);
  /* a failing commit (the temporary vanished) reports the path and reason */
  ck_assert_int_eq(myelin_atomic_open(&f, path, err, sizeof err), 0);
  fputs("data", f.fp);
  ck_assert_int_eq(unlink(f.tmp_path), 0);
  ck_assert_int_eq(myelin_atomic_commit(&f, 0, err, sizeof err), MYELIN_EIO);
  ck_assert_ptr_nonnull(strstr(err, path));
  ck_assert_ptr_nonnull(strstr(err, "No such file"));
  ck_assert(!exists(path));
  ck_assert_ptr_null(f.tmp_path);
  /* a write that fails (the descriptor is gone): reported, temporary removed */
  ck_assert_int_eq(myelin_atomic_open(&f, path, err, sizeof err), 0);
  char *tmp2 = strdup(f.tmp_path);
  close(fileno(f.fp));
  fputs("data that cannot be written", f.fp);
  ck_assert_int_eq(myelin_atomic_commit(&f, 0, err, sizeof err), MYELIN_EIO);
  ck_assert_msg(strstr(err, "write failed") && strstr(err, path), "%s", err);
  ck_assert(!exists(tmp2));
  ck_assert(!exists(path));
  free(tmp2);
  rmdir(dir);
  free(bad);
  free(tmp);
  free(path);
  free(dir);
}
END_TEST

START_TEST(folders) {
  char *dir = mt_tmpdir();
  char err[256];
  char *path = mt_strf("%s/a/b/c/file.npy", dir);
  ck_assert_int_eq(myelin_check_writable(path, err, sizeof err), 0); /* created later */
  ck_assert_int_eq(myelin_mkdirs_for(path, err, sizeof err), 0);
  char *c = mt_strf("%s/a/b/c", dir);
  struct stat st;
  ck_assert_int_eq(stat(c, &st), 0);
  ck_assert(S_ISDIR(st.st_mode));
  ck_assert_int_eq(myelin_mkdirs_for(path, err, sizeof err), 0); /* idempotent */
  ck_assert_int_eq(myelin_check_writable(path, err, sizeof err), 0);
  /* a file in the way */
  char *file = mt_strf("%s/plain", dir);
  mt_write(file, "x");
  char *under = mt_strf("%s/plain/sub/out.bin", dir);
  ck_assert_int_ne(myelin_mkdirs_for(under, err, sizeof err), 0);
  ck_assert_ptr_nonnull(strstr(err, "plain"));
  ck_assert_int_ne(myelin_check_writable(under, err, sizeof err), 0);
  ck_assert_ptr_nonnull(strstr(err, "not a folder"));
  /* a folder where a file is expected */
  ck_assert_int_eq(myelin_check_writable(c, err, sizeof err), MYELIN_EINVAL);
  ck_assert_ptr_nonnull(strstr(err, "is a folder"));
  /* read-only folder (root bypasses permissions: skip then) */
  if (geteuid() != 0) {
    chmod(c, 0555);
    ck_assert_int_ne(myelin_check_writable(path, err, sizeof err), 0);
    ck_assert_ptr_nonnull(strstr(err, "not writable"));
    chmod(c, 0755);
  }
  ck_assert_int_ne(myelin_check_writable("/dev/null/x.bin", err, sizeof err), 0);
  char *cmd = mt_strf("rm -rf %s", dir);
  ck_assert_int_eq(mt_run(cmd, NULL), 0);
  free(cmd);
  free(under);
  free(file);
  free(c);
  free(path);
  free(dir);
}
END_TEST

START_TEST(input_paths) {
  char *dir = mt_tmpdir(), *cwd = mt_tmpdir();
  char here[4096];
  ck_assert_ptr_nonnull(getcwd(here, sizeof here));
  ck_assert_int_eq(chdir(cwd), 0);
  mt_write(mt_strf("%s/near.npy", dir), "x"); /* only next to the pipeline file */
  mt_write(mt_strf("%s/both.npy", dir), "x");
  mt_write("both.npy", "x"); /* also in the working directory: that one wins */
  char *p = myelin_input_path("near.npy", dir);
  ck_assert_str_eq(p, mt_strf("%s/near.npy", dir));
  free(p);
  p = myelin_input_path("both.npy", dir);
  ck_assert_str_eq(p, "both.npy");
  free(p);
  p = myelin_input_path("ne*.npy", dir); /* a glob: matched next to the pipeline file */
  ck_assert_str_eq(p, mt_strf("%s/ne*.npy", dir));
  free(p);
  p = myelin_input_path("bo?h.npy", dir); /* matched in the working directory */
  ck_assert_str_eq(p, "bo?h.npy");
  free(p);
  p = myelin_input_path("missing.npy", dir); /* neither: as written, for the error */
  ck_assert_str_eq(p, "missing.npy");
  free(p);
  p = myelin_input_path("/abs/x.npy", dir);
  ck_assert_str_eq(p, "/abs/x.npy");
  free(p);
  p = myelin_input_path("", dir);
  ck_assert_str_eq(p, "");
  free(p);
  p = myelin_input_path("near.npy", NULL); /* no pipeline file (harness) */
  ck_assert_str_eq(p, "near.npy");
  free(p);
  ck_assert_ptr_null(myelin_input_path(NULL, dir));
  ck_assert_int_eq(chdir(here), 0);
  ck_assert_int_eq(mt_run(mt_strf("rm -rf %s %s", dir, cwd), NULL), 0);
}
END_TEST

static void write_gz(const char *path, const char *mode, const void *p, size_t n) {
  gzFile g = gzopen(path, mode);
  ck_assert_ptr_nonnull(g);
  ck_assert_int_eq(gzwrite(g, p, (unsigned)n), (int)n);
  ck_assert_int_eq(gzclose(g), Z_OK);
}

START_TEST(read_gzip) {
  char *dir = mt_tmpdir();
  char err[256];
  size_t n = 300000;
  uint8_t *src = malloc(n);
  for (size_t i = 0; i < n; i++) src[i] = (uint8_t)((i * 2654435761u) >> 13);
  char *gz = mt_strf("%s/data.gz", dir);
  write_gz(gz, "wb", src, n);
  uint8_t *data;
  size_t len;
  ck_assert_int_eq(myelin_read_file(gz, 0, &data, &len, err, sizeof err), 0);
  ck_assert_uint_eq(len, n);
  ck_assert(memcmp(data, src, n) == 0);
  ck_assert_uint_eq(data[len], 0);
  free(data);
  /* limits: exactly the size passes, one byte less fails */
  ck_assert_int_eq(myelin_read_file(gz, n, &data, &len, err, sizeof err), 0);
  free(data);
  ck_assert_int_eq(myelin_read_file(gz, n - 1, &data, &len, err, sizeof err), MYELIN_ERANGE);
  ck_assert_ptr_null(data);
  ck_assert_ptr_nonnull(strstr(err, gz));
  ck_assert_ptr_nonnull(strstr(err, "limit"));
  /* two members appended (as pigz or cat a.gz b.gz produce) */
  write_gz(gz, "ab", "tail!", 5);
  ck_assert_int_eq(myelin_read_file(gz, 0, &data, &len, err, sizeof err), 0);
  ck_assert_uint_eq(len, n + 5);
  ck_assert(memcmp(data + n, "tail!", 5) == 0);
  free(data);
  /* truncated */
  ck_assert_int_eq(truncate(gz, 1000), 0);
  ck_assert_int_eq(myelin_read_file(gz, 0, &data, &len, err, sizeof err), MYELIN_EFORMAT);
  ck_assert_ptr_nonnull(strstr(err, "truncated"));
  ck_assert_ptr_nonnull(strstr(err, gz));
  /* corrupt */
  mt_write(gz, "\x1f\x8b\x08\x00garbage garbage garbage");
  ck_assert_int_eq(myelin_read_file(gz, 0, &data, &len, err, sizeof err), MYELIN_EFORMAT);
  /* plain file with a limit */
  char *plain = mt_strf("%s/plain.txt", dir);
  mt_write(plain, "0123456789");
  ck_assert_int_eq(myelin_read_file(plain, 9, &data, &len, err, sizeof err), MYELIN_ERANGE);
  ck_assert_int_eq(myelin_read_file(plain, 10, &data, &len, err, sizeof err), 0);
  ck_assert_uint_eq(len, 10);
  free(data);
  /* empty file */
  mt_write(plain, "");
  ck_assert_int_eq(myelin_read_file(plain, 0, &data, &len, err, sizeof err), 0);
  ck_assert_uint_eq(len, 0);
  ck_assert_uint_eq(data[0], 0);
  free(data);
  /* missing file, folder */
  char *missing = mt_strf("%s/missing.bin", dir);
  ck_assert_int_eq(myelin_read_file(missing, 0, &data, &len, err, sizeof err), MYELIN_ENOENT);
  ck_assert_ptr_nonnull(strstr(err, missing));
  ck_assert_ptr_nonnull(strstr(err, "No such file"));
  ck_assert_int_eq(myelin_read_file(dir, 0, &data, &len, err, sizeof err), MYELIN_EIO);
  ck_assert_ptr_nonnull(strstr(err, "directory"));
  /* a limit refuses a big file before reading it (plain or compressed) */
  mt_write(plain, "");
  ck_assert_int_eq(truncate(plain, 1 << 20), 0);
  ck_assert_int_eq(myelin_read_file(plain, 1000, &data, &len, err, sizeof err), MYELIN_ERANGE);
  ck_assert_ptr_nonnull(strstr(err, "over the limit"));
  /* non-regular file (size unknown up front) */
  ck_assert_int_eq(myelin_read_file("/proc/self/maps", 10, &data, &len, err, sizeof err), MYELIN_ERANGE);
  ck_assert_int_eq(myelin_read_file("/proc/self/status", 0, &data, &len, err, sizeof err), 0);
  ck_assert_ptr_nonnull(strstr((char *)data, "Name:"));
  free(data);
  char *cmd = mt_strf("rm -rf %s", dir);
  ck_assert_int_eq(mt_run(cmd, NULL), 0);
  free(cmd);
  free(missing);
  free(plain);
  free(gz);
  free(src);
  free(dir);
}
END_TEST

START_TEST(gunzip_buffers) {
  const char *text = "zlib stream, not gzip; zlib stream, not gzip; zlib stream";
  uLongf zn = compressBound(strlen(text));
  uint8_t *z = malloc(zn);
  ck_assert_int_eq(compress2(z, &zn, (const Bytef *)text, strlen(text), 9), Z_OK);
  uint8_t *out;
  size_t len;
  char err[128];
  ck_assert_int_eq(myelin_gunzip(z, zn, 0, &out, &len, err, sizeof err), 0);
  ck_assert_uint_eq(len, strlen(text));
  ck_assert(memcmp(out, text, len) == 0);
  free(out);
  ck_assert_int_eq(myelin_gunzip(z, zn, 10, &out, &len, err, sizeof err), MYELIN_ERANGE);
  ck_assert_int_eq(myelin_gunzip(z, 0, 0, &out, &len, err, sizeof err), MYELIN_EFORMAT);
  free(z);
}
END_TEST

START_TEST(real_dataset_gz) {
  const char *p = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";
  MT_NEED_FILE(p, "dataset-fashion-mnist");
  uint8_t *data;
  size_t len;
  char err[256];
  ck_assert_int_eq(myelin_read_file(p, 0, &data, &len, err, sizeof err), 0);
  ck_assert_uint_eq(len, 10008); /* IDX header 8 + 10000 labels */
  ck_assert(data[2] == 0x08 && data[3] == 0x01);
  ck_assert_uint_eq((size_t)data[4] << 24 | (size_t)data[5] << 16 | (size_t)data[6] << 8 | data[7], 10000);
  free(data);
}
END_TEST

int main(void) {
  Suite *s = suite_create("io");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, atomic_commit);
  tcase_add_test(tc, atomic_abort);
  tcase_add_test(tc, folders);
  tcase_add_test(tc, input_paths);
  tcase_add_test(tc, read_gzip);
  tcase_add_test(tc, gunzip_buffers);
  tcase_add_test(tc, real_dataset_gz);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
