import type { ImageFormat } from '../shared/input-images.ts';

/**
 * Formats every sd.cpp build can decode (stb_image): PNG, JPEG, BMP and GIF. WebP and TIFF are
 * converted to PNG before sd.cpp sees them. Sniffing itself lives in ../shared/input-images.ts:
 * sd-cli picks its decoder by extension, so the saved file must carry the format the bytes really have.
 */
export function decodableBySdCpp(format: ImageFormat): boolean {
  return format === 'png' || format === 'jpeg' || format === 'bmp' || format === 'gif';
}
