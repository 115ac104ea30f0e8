"""Layer variants: attribution to a layer's input or output."""
