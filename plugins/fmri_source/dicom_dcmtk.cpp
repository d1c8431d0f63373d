/*
 * dicom_dcmtk.cpp — dicom_read(): one DICOM file through DCMTK (dicom.h).
 *
 * The only file of myelin that includes DCMTK (a C++ library): it fills the
 * plain C struct dicom_image and leaves every geometric decision to dicom.c.
 * DCMTK parses the file (any transfer syntax, either byte order, implicit or
 * explicit VR, with or without the Part 10 preamble), reports truncated and
 * malformed files as errors, and decodes JPEG, JPEG-LS and RLE pixel data
 * (its codecs are registered once per process). Decimal strings are read as
 * strings and parsed here; Siemens' binary private fields (0019,100a) and
 * (0019,1029) and the CSA header (0029,1010) are read as raw little-endian
 * bytes, as Siemens writes them (the CSA layout is parsed in dicom.c).
 *
 * No C++ exception crosses into C: the entry point catches everything.
 */
#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcrledrg.h>
#include <dcmtk/dcmdata/dctk.h>
#include <dcmtk/dcmjpeg/djdecode.h>
#include <dcmtk/dcmjpls/djdecode.h>
#include <dcmtk/oflog/oflog.h>

#include <cerrno>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "dicom.h"

namespace {

void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void set_err(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || !errlen) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

std::once_flag codecs_once;

/* Deregisters the codecs when the plugin is unloaded (or the process exits),
 * so DCMTK's codec list does not outlive them (nor show as a leak). */
struct codec_guard {
  bool on = false;
  ~codec_guard() {
    if (!on) return;
    DJDecoderRegistration::cleanup();
    DJLSDecoderRegistration::cleanup();
    DcmRLEDecoderRegistration::cleanup();
  }
} codecs_guard;

void register_codecs() {
  codecs_guard.on = true;
  DJDecoderRegistration::registerCodecs();
  DJLSDecoderRegistration::registerCodecs();
  DcmRLEDecoderRegistration::registerCodecs();
  /* Problems come back as errors naming the file, not as log lines. */
  OFLog::configure(OFLogger::OFF_LOG_LEVEL);
}

/* All values of a string element, backslash-joined ("" when absent). */
std::string get_str(DcmItem &ds, const DcmTagKey &t) {
  OFString s;
  if (ds.findAndGetOFStringArray(t, s).bad()) return "";
  std::string r(s.c_str());
  while (!r.empty() && (r.back() == ' ' || r.back() == '\0'))
    r.pop_back();
  size_t i = 0;
  while (i < r.size() && r[i] == ' ')
    i++;
  return r.substr(i);
}

/* Backslash-separated decimal strings (DS/IS) into out; the count read. */
int parse_numbers(const std::string &s, double *out, int max) {
  int n = 0;
  const char *p = s.c_str();
  while (*p && n < max) {
    char *end;
    double v = strtod(p, &end);
    if (end == p) break;
    out[n++] = v;
    p = end;
    while (*p == ' ')
      p++;
    if (*p != '\\') break;
    p++;
  }
  return n;
}

int get_numbers(DcmItem &ds, const DcmTagKey &t, double *out, int max) {
  return parse_numbers(get_str(ds, t), out, max);
}

double get_number(DcmItem &ds, const DcmTagKey &t, double def) {
  double v;
  if (get_numbers(ds, t, &v, 1) == 1 && std::isfinite(v)) return v;
  Uint32 u; /* binary VRs (US, UL) */
  if (ds.findAndGetUint32(t, u).good()) return u;
  Uint16 h;
  if (ds.findAndGetUint16(t, h).good()) return h;
  return def;
}

/* Raw bytes of an element (private tags read as UN/OB, or host-order
 * binary values that DCMTK's dictionary typed). */
std::vector<uint8_t> raw(DcmItem &ds, const DcmTagKey &t) {
  std::vector<uint8_t> v;
  DcmElement *el = nullptr;
  if (ds.findAndGetElement(t, el).bad() || !el) return v;
  Uint8 *p = nullptr;
  if (el->getUint8Array(p).good() && p) {
    v.assign(p, p + el->getLength());
    return v;
  }
  Uint16 *w = nullptr;
  if (el->getUint16Array(w).good() && w) {
    v.resize(el->getLength());
    memcpy(v.data(), w, v.size());
    return v;
  }
  Float64 *d = nullptr;
  if (el->getFloat64Array(d).good() && d) {
    v.resize(el->getLength());
    memcpy(v.data(), d, v.size());
  }
  return v;
}

DcmItem *first_item(DcmItem &ds, const DcmTagKey &t) {
  DcmItem *it = nullptr;
  if (ds.findAndGetSequenceItem(t, it, 0).bad()) return nullptr;
  return it;
}

/* Siemens private fields: mosaic slice count, slice normal, slice times. */
void read_siemens(DcmItem &ds, dicom_image *img) {
  bool mosaic = get_str(ds, DCM_ImageType).find("MOSAIC") != std::string::npos;
  std::vector<uint8_t> csa = raw(ds, DcmTagKey(0x0029, 0x1010));
  int n = 0;
  std::vector<uint8_t> b = raw(ds, DcmTagKey(0x0019, 0x100a));
  if (b.size() >= 2) n = b[0] | b[1] << 8;
  double v[3];
  if (!n && dicom_csa_numbers(csa.data(), csa.size(), "NumberOfImagesInMosaic", v, 1) == 1) n = (int)v[0];
  if (mosaic && n > 0 && n <= 4096) img->mosaic_n = n;
  if (dicom_csa_numbers(csa.data(), csa.size(), "SliceNormalVector", v, 3) == 3) {
    memcpy(img->csa_normal, v, sizeof v);
    img->has_csa_normal = 1;
  }
  if (!img->mosaic_n) return;
  std::vector<double> t;
  b = raw(ds, DcmTagKey(0x0019, 0x1029));
  for (size_t i = 0; i + 8 <= b.size(); i += 8) {
    uint64_t u = 0;
    for (int k = 7; k >= 0; k--)
      u = u << 8 | b[i + k];
    double d;
    memcpy(&d, &u, sizeof d);
    t.push_back(d);
  }
  if (t.empty()) {
    t.resize(4096);
    t.resize(dicom_csa_numbers(csa.data(), csa.size(), "MosaicRefAcqTimes", t.data(), (int)t.size()));
  }
  if ((int)t.size() != img->mosaic_n) return;
  img->slice_times = (double *)malloc(t.size() * sizeof(double));
  if (!img->slice_times) return;
  for (size_t i = 0; i < t.size(); i++)
    img->slice_times[i] = t[i] / 1000.0;
  img->n_slice_times = t.size();
}

/* AcquisitionTime "HHMMSS.frac" in seconds of the day; -1 when absent. */
double tm_seconds(const std::string &s) {
  if (s.size() < 6) return -1;
  for (int i = 0; i < 6; i++)
    if (s[i] < '0' || s[i] > '9') return -1;
  double h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[2] - '0') * 10 + (s[3] - '0');
  return h * 3600 + m * 60 + strtod(s.c_str() + 4, nullptr);
}

/* Geometry and rescale fields of a dataset (the file's top level, or a
 * functional group item of an enhanced image) into frame f (and img). */
void frame_fields(DcmItem &ds, dicom_frame *f, dicom_image *img) {
  if (get_numbers(ds, DCM_ImagePositionPatient, f->ipp, 3) == 3) f->has_ipp = 1;
  if (get_numbers(ds, DCM_ImageOrientationPatient, f->iop, 6) == 6) f->has_iop = 1;
  f->slope = get_number(ds, DCM_RescaleSlope, f->slope);
  f->inter = get_number(ds, DCM_RescaleIntercept, f->inter);
  if (get_numbers(ds, DCM_PixelSpacing, img->spacing, 2) == 2) img->has_spacing = 1;
  img->thickness = get_number(ds, DCM_SliceThickness, img->thickness);
  img->between = get_number(ds, DCM_SpacingBetweenSlices, img->between);
  double tr = get_number(ds, DCM_RepetitionTime, 0);
  if (tr > 0) img->tr = tr / 1000.0;
}

/* An enhanced image's functional group item: its sub-sequences. */
void group_fields(DcmItem &g, dicom_frame *f, dicom_image *img) {
  static const DcmTagKey seqs[] = {DCM_PlanePositionSequence, DCM_PlaneOrientationSequence,
                                   DCM_PixelMeasuresSequence, DCM_PixelValueTransformationSequence,
                                   DCM_MRTimingAndRelatedParametersSequence};
  for (const DcmTagKey &q : seqs)
    if (DcmItem *it = first_item(g, q)) frame_fields(*it, f, img);
  if (DcmItem *fc = first_item(g, DCM_FrameContentSequence)) {
    Uint32 v;
    if (fc->findAndGetUint32(DCM_TemporalPositionIndex, v).good()) f->temporal = v;
  }
}

int read_header(DcmDataset &ds, dicom_image *img, char *err, size_t errlen) {
  snprintf(img->series_uid, sizeof img->series_uid, "%s", get_str(ds, DCM_SeriesInstanceUID).c_str());
  snprintf(img->patient_id, sizeof img->patient_id, "%s", get_str(ds, DCM_PatientID).c_str());
  std::string desc = get_str(ds, DCM_SeriesDescription);
  if (desc.empty()) desc = get_str(ds, DCM_ProtocolName);
  snprintf(img->description, sizeof img->description, "%s", desc.c_str());
  img->series_number = (int)get_number(ds, DCM_SeriesNumber, -1);
  img->acquisition_number = (int)get_number(ds, DCM_AcquisitionNumber, -1);
  img->instance_number = (int)get_number(ds, DCM_InstanceNumber, -1);
  img->rows = (int)get_number(ds, DCM_Rows, 0);
  img->cols = (int)get_number(ds, DCM_Columns, 0);
  double nf = get_number(ds, DCM_NumberOfFrames, 1);
  if (!(nf >= 1 && nf <= 1e6)) {
    set_err(err, errlen, "%s: NumberOfFrames %g is not plausible", img->path, nf);
    return -1;
  }
  img->nframes = (int)nf;
  if (img->rows < 1 || img->cols < 1) {
    set_err(err, errlen, "%s: an image of %d x %d pixels (Rows, Columns)", img->path, img->rows, img->cols);
    return -1;
  }
  img->frames = (dicom_frame *)calloc((size_t)img->nframes, sizeof(dicom_frame));
  if (!img->frames) {
    set_err(err, errlen, "%s: out of memory", img->path);
    return -1;
  }
  dicom_frame top{};
  top.slope = 1;
  top.temporal = -1;
  frame_fields(ds, &top, img);
  top.acq_time = tm_seconds(get_str(ds, DCM_AcquisitionTime));
  if (DcmItem *shared = first_item(ds, DCM_SharedFunctionalGroupsSequence)) group_fields(*shared, &top, img);
  DcmSequenceOfItems *per = nullptr;
  if (ds.findAndGetSequence(DCM_PerFrameFunctionalGroupsSequence, per).bad()) per = nullptr;
  if (per && per->card() != (unsigned long)img->nframes) {
    set_err(err, errlen, "%s: %lu per-frame functional groups for %d frames", img->path, per->card(),
            img->nframes);
    return -1;
  }
  for (int i = 0; i < img->nframes; i++) {
    img->frames[i] = top;
    if (per) group_fields(*per->getItem((unsigned long)i), &img->frames[i], img);
    if (img->frames[i].slope == 0) img->frames[i].slope = 1;
  }
  read_siemens(ds, img);
  return 0;
}

/* Decoded pixels of every frame, rescaled, into img->pixels. */
int read_pixels(DcmDataset &ds, dicom_image *img, char *err, size_t errlen) {
  Uint16 spp = 1, alloc = 0, stored = 0, rep = 0;
  ds.findAndGetUint16(DCM_SamplesPerPixel, spp);
  ds.findAndGetUint16(DCM_BitsAllocated, alloc);
  ds.findAndGetUint16(DCM_BitsStored, stored);
  ds.findAndGetUint16(DCM_PixelRepresentation, rep);
  if (spp != 1) {
    set_err(err, errlen, "%s: %u samples per pixel (colour): only greyscale MR images are read", img->path,
            (unsigned)spp);
    return -1;
  }
  if (alloc != 8 && alloc != 16 && alloc != 32) {
    set_err(err, errlen, "%s: BitsAllocated %u is not supported (8, 16 or 32)", img->path, (unsigned)alloc);
    return -1;
  }
  DcmXfer xfer(ds.getOriginalXfer());
  if (ds.chooseRepresentation(EXS_LittleEndianExplicit, nullptr).bad() ||
      !ds.canWriteXfer(EXS_LittleEndianExplicit)) {
    set_err(err, errlen, "%s: cannot decode the pixel data (transfer syntax %s): truncated, or no codec",
            img->path, xfer.getXferName());
    return -1;
  }
  DcmElement *pd = nullptr;
  Uint8 *bytes = nullptr;
  if (ds.findAndGetElement(DCM_PixelData, pd).bad() || !pd || pd->getUint8Array(bytes).bad() || !bytes) {
    set_err(err, errlen, "%s: no readable pixel data (transfer syntax %s)", img->path, xfer.getXferName());
    return -1;
  }
  size_t n = (size_t)img->rows * (size_t)img->cols * (size_t)img->nframes, bpp = alloc / 8;
  if ((size_t)pd->getLength() < n * bpp) {
    set_err(err, errlen, "%s: truncated pixel data: %lu of %zu bytes", img->path,
            (unsigned long)pd->getLength(), n * bpp);
    return -1;
  }
  img->pixels = (float *)malloc((n ? n : 1) * sizeof(float));
  if (!img->pixels) {
    set_err(err, errlen, "%s: out of memory", img->path);
    return -1;
  }
  /* In memory DCMTK holds the values in host byte order. Signed values
   * stored in fewer bits than allocated are sign-extended, as pydicom does. */
  int shift = (rep == 1 && stored > 0 && stored < alloc) ? (int)(alloc - stored) : 0;
  for (size_t i = 0; i < n; i++) {
    double v;
    if (alloc == 8)
      v = rep ? (double)(int8_t)bytes[i] : (double)bytes[i];
    else if (alloc == 16) {
      uint16_t u;
      memcpy(&u, bytes + 2 * i, 2);
      v = rep ? (double)(int16_t)(uint16_t)(u << shift) / (1 << shift) : (double)u;
    } else {
      uint32_t u;
      memcpy(&u, bytes + 4 * i, 4);
      v = rep ? (double)(int32_t)(u << shift) / (double)(1u << shift) : (double)u;
    }
    img->pixels[i] = (float)v;
  }
  size_t plane = (size_t)img->rows * (size_t)img->cols;
  for (int f = 0; f < img->nframes; f++) {
    double a = img->frames[f].slope, b = img->frames[f].inter;
    if (a == 1 && b == 0) continue;
    float *p = img->pixels + (size_t)f * plane;
    for (size_t i = 0; i < plane; i++)
      p[i] = (float)((double)p[i] * a + b);
  }
  return 0;
}

int read_file(const char *path, int with_pixels, dicom_image *img, char *err, size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    set_err(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    return -1;
  }
  fclose(f);
  std::call_once(codecs_once, register_codecs);
  DcmFileFormat ff;
  OFCondition c = with_pixels ? ff.loadFile(path)
                              : ff.loadFileUntilTag(path, EXS_Unknown, EGL_noChange, DCM_MaxReadLength,
                                                    ERM_autoDetect, DCM_PixelData);
  if (c.bad()) {
    if (!dicom_sniff(path))
      set_err(err, errlen, "%s: not a DICOM file (no DICM preamble, no readable dataset)", path);
    else
      set_err(err, errlen, "%s: not a readable DICOM file (%s)", path,
              c == EC_StreamNotifyClient ? "truncated" : c.text());
    return -1;
  }
  DcmDataset &ds = *ff.getDataset();
  if (with_pixels && !ds.tagExists(DCM_PixelData)) {
    set_err(err, errlen, "%s: no pixel data: not a DICOM image%s", path,
            ds.card() == 0 || !ds.tagExists(DCM_SOPClassUID) ? " (not DICOM at all?)" : "");
    return -1;
  }
  if (read_header(ds, img, err, errlen)) return -1;
  return with_pixels ? read_pixels(ds, img, err, errlen) : 0;
}

} // namespace

/* The codecs and the data dictionary, loaded now rather than by the first
 * file read (the dictionary takes tens of ms): a watch's first volume then
 * does not pay for them. -1 if DCMTK found no data dictionary. */
extern "C" int dicom_preload(void) {
  std::call_once(codecs_once, register_codecs);
  return dcmDataDict.isDictionaryLoaded() ? 0 : -1;
}

extern "C" int dicom_read(const char *path, int with_pixels, dicom_image *img, char *err, size_t errlen) {
  memset(img, 0, sizeof *img);
  snprintf(img->path, sizeof img->path, "%s", path);
  int rc;
  try {
    rc = read_file(path, with_pixels, img, err, errlen);
  } catch (const std::bad_alloc &) {
    set_err(err, errlen, "%s: out of memory", path);
    rc = -1;
  } catch (...) {
    set_err(err, errlen, "%s: cannot read DICOM", path);
    rc = -1;
  }
  if (rc) dicom_image_free(img);
  return rc;
}

extern "C" void dicom_image_free(dicom_image *img) {
  free(img->frames);
  free(img->pixels);
  free(img->slice_times);
  img->frames = nullptr;
  img->pixels = nullptr;
  img->slice_times = nullptr;
  img->n_slice_times = 0;
}
