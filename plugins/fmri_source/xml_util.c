/*
 * xml_util.c — libxml2 helpers for the GIFTI and CIFTI-2 readers (see
 * xml_util.h). Parsing uses a private parser context, so errors are taken
 * from it (never printed by libxml2) and nothing global is changed.
 */
#include "xml_util.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libxml/parser.h>

xmlDocPtr xml_parse(const void *buf, size_t len, const char *name, char *err, size_t errlen) {
  if (len > INT_MAX) {
    snprintf(err, errlen, "%s: %zu bytes of XML is more than can be parsed", name, len);
    return NULL;
  }
  xmlParserCtxtPtr ctx = xmlNewParserCtxt();
  if (!ctx) {
    snprintf(err, errlen, "%s: out of memory", name);
    return NULL;
  }
  xmlDocPtr doc =
      xmlCtxtReadMemory(ctx, buf, (int)len, name, NULL,
                        XML_PARSE_NONET | XML_PARSE_HUGE | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
  if (!doc) {
    const xmlError *e = xmlCtxtGetLastError(ctx);
    snprintf(err, errlen, "%s:%d: not a well-formed XML file: %s", name, e ? e->line : 0,
             e && e->message ? e->message : "parse error");
    size_t n = strlen(err);
    while (n && (err[n - 1] == '\n' || err[n - 1] == ' '))
      err[--n] = 0;
  }
  xmlFreeParserCtxt(ctx);
  return doc;
}

int xml_is(const xmlNode *n, const char *name) {
  return n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, name);
}

char *xml_text(const xmlNode *e, size_t *len) {
  size_t total = 0;
  for (const xmlNode *c = e->children; c; c = c->next)
    if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) && c->content)
      total += strlen((const char *)c->content);
  char *s = malloc(total + 1);
  if (!s) return NULL;
  size_t o = 0;
  for (const xmlNode *c = e->children; c; c = c->next)
    if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) && c->content) {
      size_t k = strlen((const char *)c->content);
      memcpy(s + o, c->content, k);
      o += k;
    }
  s[o] = 0;
  if (len) *len = o;
  return s;
}

char *xml_trimmed(const char *s) {
  while (isspace((unsigned char)*s))
    s++;
  size_t n = strlen(s);
  while (n && isspace((unsigned char)s[n - 1]))
    n--;
  char *r = malloc(n + 1);
  if (r) {
    memcpy(r, s, n);
    r[n] = 0;
  }
  return r;
}

int xml_attr(const xmlNode *e, const char *name, char *buf, size_t n) {
  xmlChar *v = xmlGetNoNsProp(e, (const xmlChar *)name);
  if (!v) return -1;
  char *t = xml_trimmed((const char *)v);
  xmlFree(v);
  if (!t) return -1;
  snprintf(buf, n, "%s", t);
  free(t);
  return 0;
}

const xmlNode *xml_child(const xmlNode *e, const char *name) {
  for (const xmlNode *c = e->children; c; c = c->next)
    if (xml_is(c, name)) return c;
  return NULL;
}
