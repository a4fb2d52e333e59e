//! QR code rendering of `otpauth://` enrolment URIs, as SVG and as a PNG
//! data URI, so clients can show the code without a QR library of their own.

use data_encoding::BASE64;
use qrcodegen::{QrCode, QrCodeEcc};

use super::CryptoError;

/// Quiet zone in modules; the QR spec requires at least 4.
const BORDER: i32 = 4;
/// PNG pixels per module: large enough for phone cameras at typical sizes.
const PNG_SCALE: u32 = 8;

/// Medium error correction: survives ~15% damage (glare, screen moiré)
/// while keeping long otpauth URIs at a scannable module count.
fn encode(text: &str) -> Result<QrCode, CryptoError> {
    QrCode::encode_text(text, QrCodeEcc::Medium).map_err(|_| CryptoError::QrTooLong)
}

/// A standalone SVG document: white background and one black path of unit
/// squares, in a viewBox of `size + 8` modules so it scales crisply.
pub fn qr_svg(text: &str) -> Result<String, CryptoError> {
    let qr = encode(text)?;
    let size = qr.size();
    let dim = size + 2 * BORDER;
    let mut path = String::new();
    for y in 0..size {
        for x in 0..size {
            if qr.get_module(x, y) {
                if !path.is_empty() {
                    path.push(' ');
                }
                path.push_str(&format!("M{},{}h1v1h-1z", x + BORDER, y + BORDER));
            }
        }
    }
    Ok(format!(
        concat!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
            "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" ",
            "viewBox=\"0 0 {dim} {dim}\" stroke=\"none\" shape-rendering=\"crispEdges\">\n",
            "<rect width=\"100%\" height=\"100%\" fill=\"#FFFFFF\"/>\n",
            "<path d=\"{path}\" fill=\"#000000\"/>\n",
            "</svg>\n"
        ),
        dim = dim,
        path = path
    ))
}

/// `data:image/png;base64,...` of an 8-bit grayscale PNG, 8 px per module.
pub fn qr_png_data_uri(text: &str) -> Result<String, CryptoError> {
    let qr = encode(text)?;
    let size = qr.size();
    let modules = u32::try_from(size + 2 * BORDER).map_err(|_| CryptoError::QrTooLong)?;
    let px = modules * PNG_SCALE;
    let scale = PNG_SCALE as usize;

    let mut pixels = Vec::with_capacity((px as usize) * (px as usize));
    for my in 0..(size + 2 * BORDER) {
        let row: Vec<u8> = (0..(size + 2 * BORDER))
            .flat_map(|mx| {
                let dark = qr.get_module(mx - BORDER, my - BORDER);
                std::iter::repeat_n(if dark { 0u8 } else { 255u8 }, scale)
            })
            .collect();
        for _ in 0..scale {
            pixels.extend_from_slice(&row);
        }
    }

    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, px, px);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder
            .write_header()
            .map_err(|e| CryptoError::Png(e.to_string()))?;
        writer
            .write_image_data(&pixels)
            .map_err(|e| CryptoError::Png(e.to_string()))?;
        writer
            .finish()
            .map_err(|e| CryptoError::Png(e.to_string()))?;
    }
    Ok(format!("data:image/png;base64,{}", BASE64.encode(&out)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic
mod tests {
    use super::*;

    const URI: &str = "otpauth://totp/MSPbots:a%C3%A4%40b.com?secret=JBSWY3DPEHPK3PXP&issuer=MSPbots&algorithm=SHA1&digits=6&period=30";

    fn decode_png(data_uri: &str) -> (u32, String) {
        let b64 = data_uri.strip_prefix("data:image/png;base64,").unwrap();
        let bytes = BASE64.decode(b64.as_bytes()).unwrap();
        let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png)
            .unwrap()
            .to_luma8();
        let (w, h) = img.dimensions();
        assert_eq!(w, h);
        let mut prepared =
            rqrr::PreparedImage::prepare_from_greyscale(w as usize, h as usize, |x, y| {
                img.get_pixel(x as u32, y as u32).0[0]
            });
        let grids = prepared.detect_grids();
        assert_eq!(grids.len(), 1);
        (w, grids[0].decode().unwrap().1)
    }

    #[test]
    fn png_round_trips_through_a_decoder() {
        let uri = qr_png_data_uri(URI).unwrap();
        let (w, text) = decode_png(&uri);
        assert_eq!(text, URI);
        let modules = encode(URI).unwrap().size() as u32 + 8;
        assert_eq!(w, modules * PNG_SCALE);
    }

    #[test]
    fn svg_shape() {
        let svg = qr_svg(URI).unwrap();
        let dim = encode(URI).unwrap().size() + 8;
        assert!(svg.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
        assert!(svg.contains("xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.contains(&format!("viewBox=\"0 0 {dim} {dim}\"")));
        assert!(svg.contains("<rect width=\"100%\" height=\"100%\" fill=\"#FFFFFF\"/>"));
        assert_eq!(svg.matches("<path ").count(), 1);
        assert_eq!(svg.matches("<svg").count(), svg.matches("</svg>").count());
        // First finder pattern starts at the quiet-zone corner.
        assert!(svg.contains("d=\"M4,4h1v1h-1z"));
        let qr = encode(URI).unwrap();
        let dark = (0..qr.size())
            .flat_map(|y| (0..qr.size()).map(move |x| (x, y)))
            .filter(|&(x, y)| qr.get_module(x, y))
            .count();
        assert_eq!(svg.matches('M').count(), dark);
    }

    #[test]
    fn too_long_is_an_error() {
        let long = "x".repeat(8000);
        assert!(matches!(qr_svg(&long), Err(CryptoError::QrTooLong)));
        assert!(matches!(
            qr_png_data_uri(&long),
            Err(CryptoError::QrTooLong)
        ));
    }
}
