"""Image-quality metrics: PSNR / SSIM, LPIPS's framework-neutral half, output checks."""
