/*
 * netaddr.h — "host:port" parsing and validation shared by tcp_source and tcp_sink
 * (header-only; both plugins compile it in).
 *
 * "9000" and ":9000" mean 127.0.0.1:9000 (loopback by default: a stage never
 * listens on every interface unless asked with 0.0.0.0); "[::1]:9000" is IPv6.
 */
#ifndef MYELIN_NETADDR_H
#define MYELIN_NETADDR_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "myelin/plugin.h"

static inline int netaddr_parse(const char *spec, struct sockaddr_storage *ss, socklen_t *len, char *err,
                                size_t errlen) {
  char host[256] = "127.0.0.1";
  const char *port_s = spec;
  const char *colon = strrchr(spec, ':');
  if (spec[0] == '[') {
    const char *close = strchr(spec, ']');
    if (!close || close[1] != ':') return snprintf(err, errlen, "'%s': expected [ipv6]:port", spec), -1;
    snprintf(host, sizeof host, "%.*s", (int)(close - spec - 1), spec + 1);
    port_s = close + 2;
  } else if (colon) {
    if (colon != spec) snprintf(host, sizeof host, "%.*s", (int)(colon - spec), spec);
    port_s = colon + 1;
  }
  if (!strcmp(host, "localhost")) snprintf(host, sizeof host, "127.0.0.1");
  char *end;
  long port = strtol(port_s, &end, 10);
  if (*port_s == 0 || *end || port < 0 || port > 65535)
    return snprintf(err, errlen, "'%s': bad port (expected host:port)", spec), -1;
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    *len = sizeof *a4;
    return 0;
  }
  if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)port);
    *len = sizeof *a6;
    return 0;
  }
  return snprintf(err, errlen, "'%s': '%s' is not a numeric IP address", spec, host), -1;
}

/* Exactly one of listen/connect/unix must be given. */
static inline int netaddr_mode(const char *listen_s, const char *connect_s, const char *unix_s) {
  return (*listen_s != 0) + (*connect_s != 0) + (*unix_s != 0);
}

/* validate() of the socket plugins: one mode, and a parsable address. */
static inline int netaddr_validate(const myelin_params *p, myelin_validate_ctx *ctx) {
  const char *l = myelin_param_str(p, "listen"), *c = myelin_param_str(p, "connect"), *u = myelin_param_str(p, "unix");
  int n = netaddr_mode(l, c, u);
  if (n != 1) return myelin_validate_error(ctx, NULL, "give exactly one of listen, connect or unix (got %d)", n);
  struct sockaddr_storage ss;
  socklen_t len;
  char err[256];
  if (*l && netaddr_parse(l, &ss, &len, err, sizeof err)) return myelin_validate_error(ctx, "listen", "%s", err);
  if (*c && netaddr_parse(c, &ss, &len, err, sizeof err)) return myelin_validate_error(ctx, "connect", "%s", err);
  return 0;
}

#endif
