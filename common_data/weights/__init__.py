"""Weight files and formats: state-dict naming, safe readers, checkpoints, ncnn, VGG weights."""
