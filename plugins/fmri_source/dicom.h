/*
 * dicom.h — DICOM MR images to volumes (Siemens mosaics, enhanced
 * multi-frame, classic single-frame slice stacks), for fmri_source.
 *
 * Two layers, so the library dependency stays in one file:
 *
 *  - dicom_read() (dicom_dcmtk.cpp, the only code that knows DCMTK) parses
 *    one file: the header fields the geometry needs, the Siemens private
 *    fields (NumberOfImagesInMosaic, the CSA header's slice normal,
 *    MosaicRefAcqTimes) and, when asked, the pixels of every frame decoded
 *    (uncompressed in any byte order, JPEG, JPEG-LS, RLE: the codecs DCMTK
 *    ships) and rescaled (RescaleSlope/Intercept, per frame for enhanced
 *    images) to float. DCMTK, not GDCM: Debian's GDCM aborts the process
 *    (a failed assert) on many truncated files, DCMTK reports them;
 *  - dicom_assemble() (dicom.c, plain C) turns the images of one series into
 *    T volumes on one grid: each image is cut into planes (a mosaic into its
 *    tiles, a multi-frame image into its frames), the planes are grouped by
 *    position along the slice normal (nz positions, T planes each, ordered
 *    in time by acquisition/instance number and temporal index) and checked
 *    for one orientation, one in-plane grid and even slice spacing.
 *
 * Voxel layout and affine are dcm2niix's (before its optional 3-D
 * reorientation): x = column, y = rows flipped (last row first), z = slice in
 * order along the normal; the affine maps (x, y, z) to RAS+ mm (DICOM's LPS
 * with x and y negated, as nibabel and dcm2niix do). Data are C order over
 * (x, y, z), myelin's order. Mosaic slice positions follow nibabel's
 * MosaicWrapper (the mosaic's ImagePositionPatient corrected for the tiles).
 *
 * Every failure is an error naming the file: not DICOM, truncated, no pixel
 * data, undecodable compression, colour images, inconsistent geometry.
 */
#ifndef MYELIN_DICOM_H
#define MYELIN_DICOM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One frame's plane (the whole image for a single-frame file). */
typedef struct dicom_frame {
  double ipp[3]; /* ImagePositionPatient, LPS mm, of the first pixel */
  double iop[6]; /* ImageOrientationPatient: row cosine, column cosine */
  int has_ipp, has_iop;
  double slope, inter; /* rescale, applied to the pixels already */
  double acq_time;     /* AcquisitionTime in seconds of the day, -1 if absent */
  int64_t temporal;    /* TemporalPositionIndex (enhanced), -1 if absent */
} dicom_frame;

typedef struct dicom_image {
  char path[512];
  char series_uid[72], patient_id[72], description[80];
  int rows, cols, nframes;
  int series_number, acquisition_number, instance_number; /* -1 when absent */
  double spacing[2]; /* PixelSpacing: between rows, between columns (mm) */
  int has_spacing;
  double thickness, between; /* SliceThickness, SpacingBetweenSlices (0 = absent) */
  double tr;                 /* RepetitionTime in seconds, 0 = absent */
  int mosaic_n;              /* > 0: a Siemens mosaic of this many slices */
  double csa_normal[3];      /* CSA SliceNormalVector (LPS) */
  int has_csa_normal;
  double *slice_times; /* MosaicRefAcqTimes in seconds, mosaic order */
  size_t n_slice_times;
  dicom_frame *frames; /* nframes entries */
  float *pixels;       /* nframes * rows * cols, row-major; NULL when read without pixels */
} dicom_image;

/* Reads one file (pixels too when with_pixels). Returns 0, or -1 with a
 * message naming the file in err. */
int dicom_read(const char *path, int with_pixels, dicom_image *img, char *err, size_t errlen);
void dicom_image_free(dicom_image *img);
/* Loads DCMTK's codecs and data dictionary ahead of the first file; -1 if
 * no dictionary was found (every read would then fail). */
int dicom_preload(void);
/* 1 when the file has the DICOM preamble magic "DICM" at byte 128. */
int dicom_sniff(const char *path);
/* The numbers of element `name` of a Siemens CSA header (the bytes of
 * (0029,1010), the CSA2 "SV10" layout, as nibabel's csareader reads
 * them): up to max values into out; the count read, 0 when absent or
 * malformed (every length is bounds-checked). */
int dicom_csa_numbers(const uint8_t *buf, size_t len, const char *name, double *out, int max);

typedef struct dicom_series {
  int64_t dims[3]; /* x = columns, y = rows, z = slices */
  size_t T;        /* volumes */
  double affine[4][4];
  double tr;           /* seconds (0 = unknown) */
  double *slice_times; /* nz seconds from the volume's start, NULL when unknown */
  float *data;         /* T * V floats, each volume in C order over (x, y, z) */
} dicom_series;

/* Builds the volumes of one series from its images (with pixels, any
 * order). Returns 0, or -1 with a message naming the offending file. */
int dicom_assemble(const dicom_image *imgs, size_t n, dicom_series *out, char *err, size_t errlen);
void dicom_series_free(dicom_series *s);

#ifdef __cplusplus
}
#endif
#endif
