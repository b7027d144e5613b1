/* jvfd_crash.c: test helper that leaves a real crash's journal: writes through the journal driver and dies in the commit; nothing else. */
#include <stdio.h>
#include <stdlib.h>

#include <hdf5.h>

#include "h5mount/jvfd.h"

enum { OLD_ROWS = 1000, NEW_ROWS = 1500, C_LEN = 2000 };

/* Usage: jvfd_crash FILE [N]. FILE holds /d (int32, 1-D, extendable, OLD_ROWS rows) and /c
 * (float64, contiguous, C_LEN). Through the driver, /d is grown to NEW_ROWS rows of 3*i+7 and
 * /c overwritten with -i; the commit then ends the process with status 86 right after its
 * journal is complete (N absent or 0) or after its Nth write into FILE. Any other status: the
 * setup failed (1) or the commit finished (0). */
int main(int argc, char **argv)
{
	static int dv[NEW_ROWS];
	static double cv[C_LEN];
	hsize_t rows = NEW_ROWS;
	unsigned n = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 0;
	hid_t fapl, fid, d, c;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE [N]\n", argv[0]);
		return 2;
	}
	for (int i = 0; i < NEW_ROWS; i++)
		dv[i] = 3 * i + 7;
	for (int i = 0; i < C_LEN; i++)
		cv[i] = -(double)i;
	fapl = H5Pcreate(H5P_FILE_ACCESS);
	if (fapl < 0 || h5m_jvfd_set_fapl(fapl) != 0 || (fid = H5Fopen(argv[1], H5F_ACC_RDWR, fapl)) < 0)
		return 1;
	h5m_jvfd_set_durable(fid, false);
	d = H5Dopen2(fid, "d", H5P_DEFAULT);
	c = H5Dopen2(fid, "c", H5P_DEFAULT);
	if (d < 0 || c < 0 || H5Dset_extent(d, &rows) < 0 ||
	    H5Dwrite(d, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, dv) < 0 ||
	    H5Dwrite(c, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, cv) < 0)
		return 1;
	H5Dclose(d);
	H5Dclose(c);
	if (n)
		h5m_jvfd_crash_after_file_writes(n);
	else
		h5m_jvfd_crash_after_journal(true);
	if (H5Fflush(fid, H5F_SCOPE_GLOBAL) < 0)
		return 1;
	return 0;
}
