"""The relaxation-gap study built on top of the engines: tasks (`gap`), minimum distortion
(`distortion`), tables from the results store (`report`) and plots (`plots`)."""
