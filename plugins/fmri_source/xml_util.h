/*
 * xml_util.h — the libxml2 helpers shared by the GIFTI and CIFTI-2 readers
 * (gifti.c, cifti.c): one safe way to parse, and text/attribute access that
 * reads only text and CDATA nodes.
 */
#ifndef MYELIN_XML_UTIL_H
#define MYELIN_XML_UTIL_H

#include <stddef.h>
#include <libxml/tree.h>

/* Parses an XML document held in memory: no network, no entity
 * substitution, no DTD loading, huge text nodes allowed (one data block can
 * pass libxml2's 10 MB default). NULL with "NAME:LINE: not a well-formed
 * XML file: ..." in err on failure. Free with xmlFreeDoc. */
xmlDocPtr xml_parse(const void *buf, size_t len, const char *name, char *err, size_t errlen);
/* 1 when n is an element named name. */
int xml_is(const xmlNode *n, const char *name);
/* An element's text and CDATA children concatenated (entity references are
 * not expanded); malloc'ed; *len set when len != NULL. */
char *xml_text(const xmlNode *e, size_t *len);
/* A malloc'ed copy of s without leading/trailing white space. */
char *xml_trimmed(const char *s);
/* Attribute value (trimmed) copied into buf; 0 when present. */
int xml_attr(const xmlNode *e, const char *name, char *buf, size_t n);
/* The first child element named name, or NULL. */
const xmlNode *xml_child(const xmlNode *e, const char *name);

#endif
