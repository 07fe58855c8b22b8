/* Writes cmyk.jpg, the CMYK (YCCK, Adobe APP14) test JPEG: image/jpeg's
 * encoder cannot write one. Build and run from this directory:
 *   cc mkcmyk.c -lturbojpeg -o /tmp/mkcmyk && /tmp/mkcmyk
 * Pixels are Adobe-inverted CMYK (255 = no ink), as Photoshop writes them. */
#include <stdio.h>
#include <stdlib.h>
#include <turbojpeg.h>

int main(void) {
	const int w = 97, h = 61;
	unsigned char *pix = malloc(w * h * 4);
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++) {
			unsigned char *p = pix + 4 * (y * w + x);
			p[0] = 255 - (x * 255 / (w - 1));          /* cyan ramps left to right */
			p[1] = 255 - (y * 255 / (h - 1));          /* magenta top to bottom */
			p[2] = 255 - ((x + y) % 32 < 16 ? 200 : 0); /* yellow diagonal stripes */
			p[3] = 255 - (x < w / 4 ? 128 : 0);        /* black on the left quarter */
		}
	tjhandle t = tjInitCompress();
	unsigned char *jpg = NULL;
	unsigned long size = 0;
	if (tjCompress2(t, pix, w, 0, h, TJPF_CMYK, &jpg, &size, TJSAMP_444, 95, 0) != 0) {
		fprintf(stderr, "%s\n", tjGetErrorStr2(t));
		return 1;
	}
	FILE *f = fopen("cmyk.jpg", "wb");
	if (!f || fwrite(jpg, 1, size, f) != size || fclose(f) != 0) {
		perror("cmyk.jpg");
		return 1;
	}
	return 0;
}
