"""Keras 3 on PyTorch."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from conformance.backends.base import Adapter, Unsupported


class TorchAdapter(Adapter):
    backend = "torch"
    framework_name = "PyTorch"

    def pin_precision(self) -> str:
        import torch

        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        return "float32, TF32 off"

    def torch_device(self):
        """The device Keras puts tensors on (a GPU where there is one), so that what is compared with
        Keras runs where Keras runs."""
        return self.keras.ops.convert_to_tensor(np.zeros(1, np.float32)).device

    def backend_gradients(self, layer, x: np.ndarray, upstream: np.ndarray) -> list[Any]:
        import torch

        device = self.torch_device()
        xt = torch.tensor(x, requires_grad=True, device=device)
        for w in layer.trainable_weights:
            w.value.grad = None
        loss = (layer(xt, training=True) * torch.tensor(upstream, device=device)).sum()
        loss.backward()
        return [xt.grad, *(w.value.grad for w in layer.trainable_weights)]

    def compiled(self, model, x: np.ndarray, xla: bool, training: bool) -> Callable[[], Any]:
        raise Unsupported("torch.compile is not benchmarked on CPU: its C++ build takes minutes on 2 cores")

    def raw_forward(self, folded: list[tuple[np.ndarray, ...]], x: np.ndarray) -> Callable[[], Any]:
        import torch

        device = self.torch_device()
        params = [tuple(torch.from_numpy(a).to(device) for a in layer) for layer in folded]
        xt = torch.from_numpy(x).to(device)

        def run():
            with torch.no_grad():
                x_ = xt
                for kernel, bias, scale, shift in params:
                    x_ = torch.addmm(bias, x_, kernel) * scale + shift
                return x_.cpu().numpy()

        return run

    def matmul(self, a: np.ndarray, b: np.ndarray) -> Callable[[], Any]:
        import torch

        device = self.torch_device()
        ta, tb = torch.from_numpy(a).to(device), torch.from_numpy(b).to(device)
        if device.type == "cuda":  # wait for the product without copying it back
            def product_synchronised() -> Any:
                product = ta @ tb
                torch.cuda.synchronize(device)
                return product

            return product_synchronised
        return lambda: (ta @ tb).numpy()

    def find_device(self) -> str:
        import torch

        return f"cuda ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "cpu"

    def find_accelerator(self) -> dict[str, str]:
        import torch

        if not torch.cuda.is_available():
            return {}
        return {"accelerator": torch.cuda.get_device_name(0), "cuda": str(torch.version.cuda)}
